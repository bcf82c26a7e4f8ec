// The stand-in's data source: a RuntimeDataSource (Grafana's own base class) that asks the
// stand-in's POST /api/ds/query for deterministic data frames. Cancelling a query aborts its
// fetch, so abandoned requests do not hold the browser's connections.
import {
  DataFrame,
  DataFrameJSON,
  DataQuery,
  DataQueryRequest,
  DataQueryResponse,
  LoadingState,
  MetricFindValue,
  dataFrameFromJSON,
} from '@grafana/data';
import { RuntimeDataSource } from '@grafana/runtime';
import { sceneGraph } from '@grafana/scenes';
import { Observable } from 'rxjs';

import { knobs } from './knobs';

export const STAND_IN_DS_TYPE = 'grender-stand-in';
export const STAND_IN_DS_UID = 'grender-stand-in';
export const STAND_IN_DS = { type: STAND_IN_DS_TYPE, uid: STAND_IN_DS_UID };

export interface StandInQuery extends DataQuery {
  /** `series` (time series), `table`, or `values` (strings, for variables). */
  scenario?: 'series' | 'table' | 'values';
  /** Series name; may contain variables (`$server`). */
  alias?: string;
  /** Seed of the generated values. */
  seed?: number;
  /** The query fails at the stand-in (HTTP 500). */
  fail?: boolean;
  /** The query is slow: it takes the `slow` knob's milliseconds. */
  slow?: boolean;
}

interface QueryResponseJSON {
  results?: Record<string, { frames?: DataFrameJSON[]; error?: string; status?: number }>;
  message?: string;
}

function post(body: unknown, signal: AbortSignal): Promise<QueryResponseJSON> {
  return fetch('/api/ds/query', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
    signal,
    credentials: 'same-origin',
  }).then(async (res) => {
    const json: QueryResponseJSON = await res.json().catch(() => ({}));
    if (!res.ok) {
      const firstError = Object.values(json.results ?? {}).find((r) => r.error)?.error;
      const err = {
        status: res.status,
        statusText: res.statusText,
        message: firstError ?? json.message ?? `HTTP ${res.status}`,
        data: json,
      };
      throw err;
    }
    return json;
  });
}

export class StandInDataSource extends RuntimeDataSource<StandInQuery> {
  constructor() {
    super(STAND_IN_DS_TYPE, STAND_IN_DS_UID);
  }

  query(request: DataQueryRequest<StandInQuery>): Observable<DataQueryResponse> {
    const scene = request.scopedVars?.__sceneObject?.value?.valueOf();
    const interpolate = (s: string) => (scene ? sceneGraph.interpolate(scene as any, s, request.scopedVars) : s);
    const body = {
      from: request.range.from.valueOf(),
      to: request.range.to.valueOf(),
      maxDataPoints: request.maxDataPoints ?? 500,
      delay: knobs.delay,
      fail: knobs.fail,
      queries: request.targets
        .filter((t) => !t.hide)
        .map((t) => ({
          refId: t.refId,
          scenario: t.scenario ?? 'series',
          alias: interpolate(t.alias ?? t.refId),
          seed: t.seed ?? 0,
          fail: !!t.fail,
          delay: t.slow ? knobs.slow : undefined,
        })),
    };
    return new Observable<DataQueryResponse>((subscriber) => {
      const controller = new AbortController();
      post(body, controller.signal).then(
        (json) => {
          const data: DataFrame[] = [];
          for (const q of body.queries) {
            for (const frame of json.results?.[q.refId]?.frames ?? []) {
              data.push(dataFrameFromJSON(frame));
            }
          }
          subscriber.next({ data, state: LoadingState.Done, key: request.requestId });
          subscriber.complete();
        },
        (err) => {
          if (!controller.signal.aborted) {
            subscriber.error(err);
          }
        }
      );
      return () => controller.abort();
    });
  }

  async metricFindQuery(query: StandInQuery | string): Promise<MetricFindValue[]> {
    const controller = new AbortController();
    const alias = typeof query === 'string' ? query : (query.alias ?? 'values');
    const json = await post(
      {
        from: Date.now() - 3600_000,
        to: Date.now(),
        delay: knobs.delay,
        fail: knobs.fail,
        queries: [{ refId: 'values', scenario: 'values', alias }],
      },
      controller.signal
    );
    const frame = json.results?.values?.frames?.[0];
    const values = (frame?.data?.values?.[0] ?? []) as string[];
    return values.map((v) => ({ text: String(v), value: String(v) }));
  }

  testDatasource() {
    return Promise.resolve({ status: 'success', message: 'Stand-in data source works' });
  }
}
