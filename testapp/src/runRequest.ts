// Our own runRequest (Grafana core's lives in public/app, not on npm): runs a data source
// query and turns its responses into PanelData, reporting Loading when the answer takes a
// while, Done with frames, or Error. Unsubscribing cancels the data source's observable.
import {
  DataFrame,
  DataQueryError,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceApi,
  LoadingState,
  PanelData,
  toDataFrame,
} from '@grafana/data';
import { toDataQueryError } from '@grafana/runtime';
import { Observable, from, isObservable, merge, of, timer } from 'rxjs';
import { catchError, map, share, takeUntil } from 'rxjs/operators';

export function runRequest(ds: DataSourceApi, request: DataQueryRequest): Observable<PanelData> {
  const base = { timeRange: request.range, request };
  let result: Observable<DataQueryResponse>;
  try {
    const q = ds.query(request);
    result = isObservable(q) ? q : from(q as Promise<DataQueryResponse>);
  } catch (err) {
    return of({ ...base, state: LoadingState.Error, series: [], errors: [toDataQueryError(err as any)] });
  }
  const data = result.pipe(
    map((res): PanelData => {
      const series: DataFrame[] = (res.data ?? []).map((d: any) => toDataFrame(d));
      const errors: DataQueryError[] = res.errors ?? (res.error ? [res.error] : []);
      return {
        ...base,
        state: errors.length ? LoadingState.Error : (res.state ?? LoadingState.Done),
        series,
        errors: errors.length ? errors : undefined,
      };
    }),
    catchError((err) => of<PanelData>({ ...base, state: LoadingState.Error, series: [], errors: [toDataQueryError(err)] })),
    share()
  );
  // Like Grafana: a Loading state only when the answer is not there within 200 ms.
  const loading = timer(200).pipe(
    map((): PanelData => ({ ...base, state: LoadingState.Loading, series: [] })),
    takeUntil(data)
  );
  return merge(loading, data);
}
