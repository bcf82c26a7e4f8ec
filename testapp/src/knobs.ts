// Knobs read once from the dashboard URL and passed along to the stand-in's query endpoint.
const params = new URLSearchParams(window.location.search);

function num(name: string): number | undefined {
  const v = params.get(name);
  if (v === null || v === '') {
    return undefined;
  }
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export const knobs = {
  /** Milliseconds every query takes at the stand-in (`delay=`). */
  delay: num('delay') ?? 0,
  /** Milliseconds the dashboards' "slow" queries take (`slow=`, default 3000). */
  slow: num('slow') ?? 3000,
  /** Every query fails (`fail=1`). */
  fail: params.get('fail') === '1',
};
