//! Report scheduling: when a report is due, and which absolute time range it covers.
//!
//! * [`Schedule`] wraps a 5-field cron expression (or a friendly helper such as
//!   `weekly on monday at 08:00`) evaluated in an IANA time zone. Cron matching,
//!   including daylight-saving transitions, is done by the `croner` crate.
//! * [`resolve_time`] / [`resolve_range`] turn Grafana-style relative times
//!   (`now-7d`, `now/d`, `now-1M/M`, …) into absolute instants at the time a
//!   report was due.
//!
//! All calendar work (days, weeks, months, years, rounding) is done on the wall
//! clock of the report's time zone; seconds, minutes and hours are absolute
//! durations, as in Grafana (moment.js).

use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime,
    Offset, SubsecRound, TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Words that start a helper spec instead of a cron expression.
const HELPERS: &str = "hourly, daily, weekly, monthly";

/// Field list quoted in errors about the shape of a cron expression.
const CRON_FIELDS: &str =
    "a cron expression has 5 fields (minute hour day-of-month month day-of-week)";

/// Parses an IANA time zone name ("Europe/Berlin", "UTC"), exact spelling, with an
/// error message fit to show to the person who typed it.
pub(crate) fn parse_tz(name: &str) -> Result<Tz, String> {
    let name = name.trim();
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone \"{name}\" (an IANA name such as Europe/Berlin or UTC)")
    })
}

/// When a report is due: a compiled cron expression read in a time zone.
///
/// Cron semantics (via `croner`):
/// * fields are minute, hour, day-of-month, month, day-of-week, read on the wall clock
///   of the time zone; names like `MON`/`JAN`, ranges, steps, `L` (last day of month),
///   `#` (nth weekday), `W` and `+` (day-of-month AND day-of-week) are accepted;
/// * if both day-of-month and day-of-week are restricted, either may match (Vixie cron);
/// * a day-of-month the month lacks (e.g. 31 in April) simply does not occur that month;
/// * DST gap: a fixed time that does not exist (02:30 on a spring-forward day) runs once,
///   at the first minute after the gap (03:00 in Europe/Berlin);
/// * DST overlap: a fixed time that happens twice runs once, at its first occurrence;
///   wildcard/step minute or hour fields (`0 * * * *`) run in both passes of the repeated
///   hour, as an hourly job should.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    cron: Cron,
    /// The 5-field expression actually compiled (helpers already translated).
    expression: String,
    tz: Tz,
}

impl Schedule {
    /// Compiles `spec` in time zone `tz`.
    ///
    /// `spec` is a 5-field cron expression ("0 8 * * 1-5", names like MON/JAN allowed)
    /// or a helper (case-insensitive, any amount of spaces):
    /// * `hourly` (minute 0), `hourly at :15`
    /// * `daily` (00:00), `daily at 08:00`
    /// * `weekly` (monday 00:00), `weekly on monday`, `weekly on mon at 08:00`, `weekly at 08:00`
    /// * `monthly` (day 1, 00:00), `monthly on 15`, `monthly on 1 at 07:30`,
    ///   `monthly on last at 07:30`; a day the month lacks (31 in April, 30 in February)
    ///   is skipped that month, as in cron — use `last` for "end of every month".
    ///
    /// Cron with seconds or years (6/7 fields) and `@daily`-style nicknames are rejected:
    /// reports run at most once a minute, and the helpers cover the nicknames.
    /// `tz` is an IANA name ("Europe/Berlin", "UTC").
    pub(crate) fn parse(spec: &str, tz: &str) -> Result<Schedule, String> {
        let tz = parse_tz(tz)?;
        let spec = spec.trim();
        let tokens: Vec<&str> = spec.split_whitespace().collect();
        let first = match tokens.first() {
            Some(first) => *first,
            None => {
                return Err(format!(
                    "the schedule is empty: use a helper ({HELPERS}) or a cron expression; {CRON_FIELDS}"
                ));
            }
        };
        let expression = if first.starts_with('@') {
            return Err(format!(
                "\"{spec}\": @-nicknames are not accepted; use a helper ({HELPERS}) or a 5-field cron expression"
            ));
        } else if first.starts_with(|c: char| c.is_ascii_alphabetic()) {
            translate_helper(spec, &tokens)?
        } else {
            match tokens.len() {
                5 => tokens.join(" "),
                6 | 7 => {
                    return Err(format!(
                        "\"{spec}\": {CRON_FIELDS}; seconds and year fields are not accepted because reports run at most once a minute"
                    ));
                }
                _ => return Err(format!("\"{spec}\": {CRON_FIELDS}")),
            }
        };
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(&expression)
            .map_err(|e| format!("\"{spec}\": invalid cron expression ({e})"))?;
        // Reject expressions that can never fire ("0 0 30 2 *") instead of silently never sending.
        if cron
            .find_next_occurrence(&DateTime::UNIX_EPOCH, false)
            .is_err()
        {
            return Err(format!(
                "\"{spec}\": never due (no date matches it, e.g. February 30)"
            ));
        }
        Ok(Schedule {
            cron,
            expression,
            tz,
        })
    }

    /// The time zone the cron fields are read in (also the one to resolve the
    /// report's time range in).
    #[cfg(test)]
    pub(crate) fn tz(&self) -> Tz {
        self.tz
    }

    /// The first due time strictly after `t`. `None` only if croner finds no match
    /// (past its year-5000 limit); never-matching expressions are rejected by `parse`.
    pub(crate) fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Due times are whole minutes, so dropping sub-seconds does not change the answer
        // and keeps croner's "next second" stepping exact.
        let local = t.trunc_subsecs(0).with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The latest due time at or before `t` — used so that a report that fell due
    /// while the service was down is sent once on restart. Uses croner's backward
    /// search, so it is exact for any schedule (hourly … yearly).
    pub(crate) fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.trunc_subsecs(0).with_timezone(&self.tz);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// Human-readable form for listings: the compiled cron expression and the zone,
    /// e.g. "0 8 * * 1 (Europe/Berlin)".
    pub(crate) fn describe(&self) -> String {
        format!("{} ({})", self.expression, self.tz.name())
    }
}

/// Translates a helper spec (`tokens` = `spec` split on whitespace) into a cron expression.
fn translate_helper(spec: &str, tokens: &[&str]) -> Result<String, String> {
    let lower: Vec<String> = tokens.iter().map(|t| t.to_ascii_lowercase()).collect();
    let words: Vec<&str> = lower.iter().map(String::as_str).collect();
    let (kind, rest) = match words.split_first() {
        Some((kind, rest)) => (*kind, rest),
        None => return Err(format!("\"{spec}\": the schedule is empty")),
    };
    let usage = match kind {
        "hourly" => "\"hourly\" or \"hourly at :MM\" (e.g. \"hourly at :15\")",
        "daily" => "\"daily\" or \"daily at HH:MM\" (e.g. \"daily at 08:00\")",
        "weekly" => {
            "\"weekly\", \"weekly on DAY\" or \"weekly on DAY at HH:MM\" (DAY is monday..sunday or mon..sun, e.g. \"weekly on monday at 08:00\")"
        }
        "monthly" => {
            "\"monthly\", \"monthly on N\" or \"monthly on N at HH:MM\" (N is 1-31 or last, e.g. \"monthly on 1 at 07:30\")"
        }
        _ => {
            return Err(format!(
                "\"{spec}\": unknown schedule \"{}\" (use a helper: {HELPERS}; or a cron expression: {CRON_FIELDS})",
                tokens.first().copied().unwrap_or_default()
            ));
        }
    };
    let bad_shape = || format!("\"{spec}\": expected {usage}");
    let (on, at) = match rest {
        [] => (None, None),
        ["on", x] => (Some(*x), None),
        ["at", t] => (None, Some(*t)),
        ["on", x, "at", t] => (Some(*x), Some(*t)),
        _ => return Err(bad_shape()),
    };
    match kind {
        "hourly" => {
            if on.is_some() {
                return Err(bad_shape());
            }
            let minute = match at {
                None => 0,
                Some(m) => parse_minute_only(spec, m)?,
            };
            Ok(format!("{minute} * * * *"))
        }
        "daily" => {
            if on.is_some() {
                return Err(bad_shape());
            }
            let (h, m) = at.map_or(Ok((0, 0)), |t| parse_hh_mm(spec, t))?;
            Ok(format!("{m} {h} * * *"))
        }
        "weekly" => {
            let dow = match on {
                None => 1,
                Some(day) => weekday_number(day).ok_or_else(|| {
                    format!("\"{spec}\": unknown day \"{day}\" (monday..sunday or mon..sun)")
                })?,
            };
            let (h, m) = at.map_or(Ok((0, 0)), |t| parse_hh_mm(spec, t))?;
            Ok(format!("{m} {h} * * {dow}"))
        }
        _ => {
            // monthly
            let dom = match on {
                None => "1".to_string(),
                Some("last") => "L".to_string(),
                Some(day) => match day.parse::<u32>() {
                    Ok(n @ 1..=31) if day.bytes().all(|b| b.is_ascii_digit()) => n.to_string(),
                    _ => {
                        return Err(format!(
                            "\"{spec}\": days of the month are 1-31 or \"last\""
                        ));
                    }
                },
            };
            let (h, m) = at.map_or(Ok((0, 0)), |t| parse_hh_mm(spec, t))?;
            Ok(format!("{m} {h} {dom} * *"))
        }
    }
}

/// Cron day-of-week number (0 = Sunday) of an English day name or 3-letter abbreviation.
fn weekday_number(day: &str) -> Option<u32> {
    let n = match day {
        "sunday" | "sun" => 0,
        "monday" | "mon" => 1,
        "tuesday" | "tue" => 2,
        "wednesday" | "wed" => 3,
        "thursday" | "thu" => 4,
        "friday" | "fri" => 5,
        "saturday" | "sat" => 6,
        _ => return None,
    };
    Some(n)
}

/// Parses `:MM` (or `MM`) for `hourly at :MM`.
fn parse_minute_only(spec: &str, text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix(':').unwrap_or(text);
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "\"{spec}\": expected the minute as :MM, e.g. \"hourly at :15\""
        ));
    }
    match digits.parse::<u32>() {
        Ok(m) if m <= 59 => Ok(m),
        _ => Err(format!("\"{spec}\": minutes are 00-59")),
    }
}

/// Parses `HH:MM` (24-hour; `8:00` also accepted).
fn parse_hh_mm(spec: &str, text: &str) -> Result<(u32, u32), String> {
    let shape_err = || format!("\"{spec}\": expected a time as HH:MM (24-hour), e.g. 08:00");
    let (h, m) = text.split_once(':').ok_or_else(shape_err)?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(h) || h.len() > 2 || !all_digits(m) || m.len() != 2 {
        return Err(shape_err());
    }
    let hour: u32 = h.parse().map_err(|_| shape_err())?;
    let minute: u32 = m.parse().map_err(|_| shape_err())?;
    if hour > 23 {
        return Err(format!("\"{spec}\": hours are 00-23"));
    }
    if minute > 59 {
        return Err(format!("\"{spec}\": minutes are 00-59"));
    }
    Ok((hour, minute))
}

// ---------------------------------------------------------------------------
// Grafana-style time expressions
// ---------------------------------------------------------------------------

/// A report's absolute time range, resolved at the time the report was due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeRange {
    /// Start of the range (inclusive).
    pub(crate) from: DateTime<Utc>,
    /// End of the range (for a rounded `to` such as `now/d`, the unit's last millisecond).
    pub(crate) to: DateTime<Utc>,
}

impl TimeRange {
    /// `from` as epoch milliseconds, the form Grafana's render API takes.
    // Named after the range's `from` field (Grafana's `from=` parameter), not a constructor.
    #[allow(clippy::wrong_self_convention)]
    pub(crate) fn from_ms(&self) -> i64 {
        self.from.timestamp_millis()
    }

    /// `to` as epoch milliseconds, the form Grafana's render API takes.
    #[allow(clippy::wrong_self_convention)]
    pub(crate) fn to_ms(&self) -> i64 {
        self.to.timestamp_millis()
    }

    /// Human-readable range for e-mail subjects and PDF headers, in `tz`, to the minute:
    /// "2026-11-23 08:00 – 2026-11-30 08:00 (Europe/Berlin)".
    pub(crate) fn describe(&self, tz: Tz) -> String {
        const FMT: &str = "%Y-%m-%d %H:%M";
        format!(
            "{} – {} ({})",
            self.from.with_timezone(&tz).format(FMT),
            self.to.with_timezone(&tz).format(FMT),
            tz.name()
        )
    }
}

/// Resolves a report's `from`/`to` expressions at `due` (a report due at T covers the
/// range as it was at T, even when it is sent later). `from` rounds to the start of a
/// unit, `to` to its end. Errors if the range is empty (`from >= to`).
pub(crate) fn resolve_range(
    from: &str,
    to: &str,
    due: DateTime<Utc>,
    tz: Tz,
) -> Result<TimeRange, String> {
    let start = resolve_time(from, due, tz, false)?;
    let end = resolve_time(to, due, tz, true)?;
    if start >= end {
        let fmt = "%Y-%m-%d %H:%M:%S";
        return Err(format!(
            "time range \"{}\" to \"{}\" is empty: from ({}) is not before to ({}) in {}",
            from.trim(),
            to.trim(),
            start.with_timezone(&tz).format(fmt),
            end.with_timezone(&tz).format(fmt),
            tz.name()
        ));
    }
    Ok(TimeRange {
        from: start,
        to: end,
    })
}

/// Units of Grafana time math.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Unit {
    fn from_char(c: char) -> Option<Unit> {
        Some(match c {
            's' => Unit::Second,
            'm' => Unit::Minute,
            'h' => Unit::Hour,
            'd' => Unit::Day,
            'w' => Unit::Week,
            'M' => Unit::Month,
            'y' => Unit::Year,
            _ => return None,
        })
    }
}

/// How to pick an instant for a wall-clock time that happens twice (DST fall-back).
#[derive(Debug, Clone, Copy)]
enum Pick {
    /// The first occurrence.
    Earliest,
    /// The occurrence with this UTC offset if there is one, else the first.
    Like(FixedOffset),
}

/// Resolves a Grafana time expression at `now` in `tz`.
///
/// Accepted: `now`, then any chain of `+N<unit>`, `-N<unit>` (N defaults to 1, as in
/// Grafana) and `/<unit>` (round), applied left to right: `now-7d`, `now-1h`, `now/d`,
/// `now-1d/d`, `now/w`, `now-1M/M`, `now+2h`, `now-1d-2h`, `now/d+8h`. Units: `s m h d w M y`
/// (`M` = month, `m` = minute). Also an epoch in milliseconds (`1700000000000`) or an
/// RFC 3339 timestamp (`2026-11-23T08:00:00+01:00`).
///
/// Semantics (Grafana's / moment.js's):
/// * `s m h` are absolute durations; `d w M y` move the calendar in `tz` keeping the
///   wall-clock time (so `now-1d` across a DST change is still "same time yesterday");
/// * months clamp to the month's end: Mar 31 `-1M` → Feb 28/29, Jan 31 `-1M` → Dec 31;
/// * `/unit` rounds to the START of the unit in `tz` when `end_of_unit` is false (a `from`)
///   and to its END — its last millisecond — when true (a `to`); so from=`now/d`,
///   to=`now/d` is the whole of today;
/// * weeks start on Monday (ISO 8601). Grafana's own `now/w` depends on the browser
///   locale / dashboard setting; Monday is the choice here, fixed for reproducible reports.
/// * a wall-clock time skipped by DST is moved forward by the gap (02:30 → 03:30 in
///   Europe/Berlin); a repeated one keeps the UTC offset it had before the step, else
///   takes the first occurrence.
pub(crate) fn resolve_time(
    expr: &str,
    now: DateTime<Utc>,
    tz: Tz,
    end_of_unit: bool,
) -> Result<DateTime<Utc>, String> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Err("the time expression is empty (use e.g. now, now-7d or now/d)".to_string());
    }
    if let Some(math) = expr.strip_prefix("now") {
        return resolve_math(expr, math, now.with_timezone(&tz), end_of_unit)
            .map(|d| d.with_timezone(&Utc));
    }
    if expr.bytes().all(|b| b.is_ascii_digit()) {
        return expr
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| format!("\"{expr}\": epoch milliseconds out of range"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(expr) {
        return Ok(t.with_timezone(&Utc));
    }
    Err(format!(
        "\"{expr}\": not a time expression (use now, now-7d, now/d, now-1d/d, epoch milliseconds or an RFC 3339 timestamp)"
    ))
}

/// Applies the operations after "now" (`math`) to `cur`, left to right.
fn resolve_math(
    expr: &str,
    math: &str,
    mut cur: DateTime<Tz>,
    end_of_unit: bool,
) -> Result<DateTime<Tz>, String> {
    let overflow = || format!("\"{expr}\": the result is out of range");
    let mut chars = math.chars().peekable();
    while let Some(op) = chars.next() {
        if !matches!(op, '+' | '-' | '/') {
            return Err(format!(
                "\"{expr}\": expected +, - or / after \"now\" (e.g. now-7d, now/d, now-1d/d), found \"{op}\""
            ));
        }
        let mut digits = String::new();
        while let Some(c) = chars.peek().copied().filter(char::is_ascii_digit) {
            digits.push(c);
            chars.next();
        }
        let unit_char = chars.next().ok_or_else(|| {
            format!("\"{expr}\": missing unit after \"{op}{digits}\" (s, m, h, d, w, M or y)")
        })?;
        let unit = Unit::from_char(unit_char).ok_or_else(|| {
            format!(
                "\"{expr}\": unknown unit \"{unit_char}\" (s, m, h, d, w, M or y; M is months, m is minutes)"
            )
        })?;
        if op == '/' {
            if !digits.is_empty() {
                return Err(format!(
                    "\"{expr}\": rounding takes a unit without a number, e.g. now/d"
                ));
            }
            cur = round(cur, unit, end_of_unit).ok_or_else(overflow)?;
        } else {
            let n: i64 = if digits.is_empty() {
                1
            } else {
                digits.parse().map_err(|_| overflow())?
            };
            let n = if op == '-' { -n } else { n };
            cur = shift(cur, n, unit).ok_or_else(overflow)?;
        }
    }
    Ok(cur)
}

/// Moves `cur` by `n` units: absolute for s/m/h, on the wall clock for d/w/M/y.
fn shift(cur: DateTime<Tz>, n: i64, unit: Unit) -> Option<DateTime<Tz>> {
    let tz = cur.timezone();
    let keep = Pick::Like(cur.offset().fix());
    let local = cur.naive_local();
    let naive = match unit {
        Unit::Second => return cur.checked_add_signed(TimeDelta::try_seconds(n)?),
        Unit::Minute => return cur.checked_add_signed(TimeDelta::try_minutes(n)?),
        Unit::Hour => return cur.checked_add_signed(TimeDelta::try_hours(n)?),
        Unit::Day => local.checked_add_signed(TimeDelta::try_days(n)?)?,
        Unit::Week => local.checked_add_signed(TimeDelta::try_weeks(n)?)?,
        Unit::Month => add_months(local, n)?,
        Unit::Year => add_months(local, n.checked_mul(12)?)?,
    };
    from_local(tz, naive, keep)
}

/// Adds (or subtracts) calendar months, clamping the day to the month's end.
fn add_months(local: NaiveDateTime, n: i64) -> Option<NaiveDateTime> {
    let months = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
    if n >= 0 {
        local.checked_add_months(months)
    } else {
        local.checked_sub_months(months)
    }
}

/// Rounds `cur` to the start (or, with `end`, the last millisecond) of its `unit` in its zone.
fn round(cur: DateTime<Tz>, unit: Unit, end: bool) -> Option<DateTime<Tz>> {
    let tz = cur.timezone();
    let local = cur.naive_local();
    let date = local.date();
    let hms = |h, m, s| NaiveTime::from_hms_opt(h, m, s).map(|t| date.and_time(t));
    let one_ms = TimeDelta::milliseconds(1);

    // Sub-day units: round on the wall clock, keep the instant's own offset (so the second
    // pass of a repeated hour rounds within itself), and measure the unit in absolute time.
    let sub_day = |start: NaiveDateTime, len: TimeDelta| -> Option<DateTime<Tz>> {
        let start = from_local(tz, start, Pick::Like(cur.offset().fix()))?;
        if end {
            start.checked_add_signed(len - one_ms)
        } else {
            Some(start)
        }
    };
    match unit {
        Unit::Second => return sub_day(local.with_nanosecond(0)?, TimeDelta::seconds(1)),
        Unit::Minute => {
            return sub_day(hms(local.hour(), local.minute(), 0)?, TimeDelta::minutes(1));
        }
        Unit::Hour => return sub_day(hms(local.hour(), 0, 0)?, TimeDelta::hours(1)),
        _ => {}
    }

    // Calendar units: [start of unit, start of next unit) on the wall clock.
    let (first_day, next_first_day): (NaiveDate, NaiveDate) = match unit {
        Unit::Day => (date, date.succ_opt()?),
        Unit::Week => {
            let monday = date.checked_sub_signed(TimeDelta::days(i64::from(
                date.weekday().num_days_from_monday(),
            )))?;
            (monday, monday.checked_add_signed(TimeDelta::days(7))?)
        }
        Unit::Month => {
            let first = date.with_day(1)?;
            (first, first.checked_add_months(Months::new(1))?)
        }
        _ => {
            let first = NaiveDate::from_ymd_opt(date.year(), 1, 1)?;
            (
                first,
                NaiveDate::from_ymd_opt(date.year().checked_add(1)?, 1, 1)?,
            )
        }
    };
    if end {
        let next = from_local(tz, next_first_day.and_time(NaiveTime::MIN), Pick::Earliest)?;
        next.checked_sub_signed(one_ms)
    } else {
        from_local(tz, first_day.and_time(NaiveTime::MIN), Pick::Earliest)
    }
}

/// Maps a wall-clock time in `tz` to an instant. Repeated times follow `pick`; a time
/// inside a DST gap is read with the offset in force before the gap, i.e. moved forward by
/// the gap's length (02:30 → 03:30 CEST; a midnight that does not exist → the transition).
fn from_local(tz: Tz, naive: NaiveDateTime, pick: Pick) -> Option<DateTime<Tz>> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(d) => Some(d),
        LocalResult::Ambiguous(first, second) => Some(match pick {
            Pick::Like(offset) if second.offset().fix() == offset => second,
            _ => first,
        }),
        LocalResult::None => {
            let before = naive.checked_sub_signed(TimeDelta::days(1))?;
            let offset = tz.offset_from_utc_datetime(&before).fix();
            let utc = naive
                .checked_sub_signed(TimeDelta::seconds(i64::from(offset.local_minus_utc())))?;
            Some(tz.from_utc_datetime(&utc))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    /// UTC instant from "YYYY-MM-DD HH:MM[:SS[.fff]]".
    fn utc(s: &str) -> DateTime<Utc> {
        let fmt = if s.len() > 16 {
            "%Y-%m-%d %H:%M:%S%.f"
        } else {
            "%Y-%m-%d %H:%M"
        };
        NaiveDateTime::parse_from_str(s, fmt).unwrap().and_utc()
    }

    fn sched(spec: &str, tz: &str) -> Schedule {
        Schedule::parse(spec, tz).unwrap()
    }

    fn next(spec: &str, tz: &str, t: &str) -> DateTime<Utc> {
        sched(spec, tz).next_after(utc(t)).unwrap()
    }

    fn err(spec: &str, tz: &str) -> String {
        Schedule::parse(spec, tz).unwrap_err()
    }

    /// All runs in [start, end), from repeated next_after.
    fn runs(s: &Schedule, start: &str, end: &str) -> Vec<DateTime<Utc>> {
        let end = utc(end);
        let mut out = Vec::new();
        let mut t = utc(start) - TimeDelta::seconds(1);
        while let Some(n) = s.next_after(t) {
            if n >= end {
                break;
            }
            out.push(n);
            t = n;
        }
        out
    }

    /// Runs whose local date in `tz` is `date`.
    fn runs_on_local_date(s: &Schedule, date: &str) -> Vec<DateTime<Utc>> {
        let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        let day_before = d.pred_opt().unwrap().format("%Y-%m-%d 00:00").to_string();
        let day_after = d.succ_opt().unwrap().succ_opt().unwrap();
        let day_after = day_after.format("%Y-%m-%d 00:00").to_string();
        runs(s, &day_before, &day_after)
            .into_iter()
            .filter(|r| r.with_timezone(&s.tz()).date_naive() == d)
            .collect()
    }

    fn resolve(expr: &str, now: &str, end: bool) -> DateTime<Utc> {
        resolve_time(expr, utc(now), BERLIN, end).unwrap()
    }

    // ----- helpers → cron -----

    #[test]
    fn helpers_translate_to_cron() {
        let cases = [
            ("hourly", "0 * * * *"),
            ("hourly at :15", "15 * * * *"),
            ("HOURLY   AT   :05", "5 * * * *"),
            ("daily", "0 0 * * *"),
            ("daily at 08:00", "0 8 * * *"),
            ("Daily at 8:05", "5 8 * * *"),
            ("weekly", "0 0 * * 1"),
            ("weekly on monday at 08:00", "0 8 * * 1"),
            ("weekly on SUN", "0 0 * * 0"),
            ("weekly at 09:30", "30 9 * * 1"),
            ("monthly", "0 0 1 * *"),
            ("monthly on 1 at 07:30", "30 7 1 * *"),
            ("monthly on last at 07:30", "30 7 L * *"),
            ("  0   8 *  * 1-5 ", "0 8 * * 1-5"),
        ];
        for (spec, cron) in cases {
            assert_eq!(
                sched(spec, "UTC").describe(),
                format!("{cron} (UTC)"),
                "{spec}"
            );
        }
    }

    #[test]
    fn describe_format() {
        assert_eq!(
            sched("weekly on monday at 08:00", "Europe/Berlin").describe(),
            "0 8 * * 1 (Europe/Berlin)"
        );
        assert_eq!(
            sched("0 8 * * MON", " UTC ").describe(),
            "0 8 * * MON (UTC)"
        );
        assert_eq!(sched("daily", "Europe/Berlin").tz(), BERLIN);
    }

    // ----- next_after -----

    #[test]
    fn next_after_hourly() {
        assert_eq!(
            next("hourly", "UTC", "2026-11-30 10:20"),
            utc("2026-11-30 11:00")
        );
        // strictly after: a due time is not returned for itself
        assert_eq!(
            next("hourly", "UTC", "2026-11-30 11:00"),
            utc("2026-11-30 12:00")
        );
        assert_eq!(
            next("hourly at :15", "UTC", "2026-11-30 10:10"),
            utc("2026-11-30 10:15")
        );
        assert_eq!(
            next("hourly at :15", "UTC", "2026-11-30 10:15"),
            utc("2026-11-30 11:15")
        );
        // sub-second part after a due time
        assert_eq!(
            next("hourly at :15", "UTC", "2026-11-30 10:15:00.400"),
            utc("2026-11-30 11:15")
        );
        assert_eq!(
            next("hourly at :15", "UTC", "2026-11-30 10:14:59.999"),
            utc("2026-11-30 10:15")
        );
        // across midnight and year end
        assert_eq!(
            next("hourly", "UTC", "2026-12-31 23:30"),
            utc("2027-01-01 00:00")
        );
    }

    #[test]
    fn next_after_daily() {
        assert_eq!(
            next("daily", "UTC", "2026-11-30 10:00"),
            utc("2026-12-01 00:00")
        );
        assert_eq!(
            next("daily at 08:00", "UTC", "2026-11-30 07:59"),
            utc("2026-11-30 08:00")
        );
        assert_eq!(
            next("daily at 08:00", "UTC", "2026-11-30 08:00"),
            utc("2026-12-01 08:00")
        );
        // Berlin winter (UTC+1) and summer (UTC+2)
        assert_eq!(
            next("daily at 08:00", "Europe/Berlin", "2026-11-30 08:00"),
            utc("2026-12-01 07:00")
        );
        assert_eq!(
            next("daily at 08:00", "Europe/Berlin", "2026-07-01 00:00"),
            utc("2026-07-01 06:00")
        );
    }

    #[test]
    fn next_after_weekly() {
        // Wed 2026-11-25 → Mon 2026-11-30 08:00 CET = 07:00 UTC
        let s = sched("weekly on monday at 08:00", "Europe/Berlin");
        let first = s.next_after(utc("2026-11-25 12:00")).unwrap();
        assert_eq!(first, utc("2026-11-30 07:00"));
        // across the month end
        assert_eq!(s.next_after(first).unwrap(), utc("2026-12-07 07:00"));
        // Friday 2026-07-31 is the last day of July; the next one is in August
        let fri = sched("weekly on fri at 17:30", "Europe/Berlin");
        let a = fri.next_after(utc("2026-07-29 00:00")).unwrap();
        assert_eq!(a, utc("2026-07-31 15:30"));
        assert_eq!(fri.next_after(a).unwrap(), utc("2026-08-07 15:30"));
        // bare "weekly" is Monday 00:00
        assert_eq!(
            next("weekly", "UTC", "2026-11-25 12:00"),
            utc("2026-11-30 00:00")
        );
        assert_eq!(
            next("weekly on sunday", "UTC", "2026-11-25 12:00"),
            utc("2026-11-29 00:00")
        );
    }

    #[test]
    fn next_after_monthly() {
        assert_eq!(
            next("monthly on 1 at 07:30", "Europe/Berlin", "2026-11-15 00:00"),
            utc("2026-12-01 06:30")
        );
        assert_eq!(
            next("monthly", "UTC", "2026-11-15 00:00"),
            utc("2026-12-01 00:00")
        );
        // day 31 skips months that lack it
        let s = sched("monthly on 31 at 08:00", "UTC");
        let got = runs(&s, "2026-01-01 00:00", "2027-01-01 00:00");
        let want: Vec<_> = ["01", "03", "05", "07", "08", "10", "12"]
            .iter()
            .map(|m| utc(&format!("2026-{m}-31 08:00")))
            .collect();
        assert_eq!(got, want);
        // "last" follows each month's length, including a leap February
        let last = sched("monthly on last at 07:30", "UTC");
        let got = runs(&last, "2028-01-15 00:00", "2028-05-01 00:00");
        assert_eq!(
            got,
            vec![
                utc("2028-01-31 07:30"),
                utc("2028-02-29 07:30"),
                utc("2028-03-31 07:30"),
                utc("2028-04-30 07:30"),
            ]
        );
    }

    #[test]
    fn next_after_raw_cron() {
        // Fri 2026-11-27 09:00 → Mon 2026-11-30 08:00
        assert_eq!(
            next("0 8 * * 1-5", "UTC", "2026-11-27 09:00"),
            utc("2026-11-30 08:00")
        );
        assert_eq!(
            next("0 8 * * MON-FRI", "Europe/Berlin", "2026-11-27 09:00"),
            utc("2026-11-30 07:00")
        );
        assert_eq!(
            next("0 9 1 jan *", "Europe/Berlin", "2026-06-01 00:00"),
            utc("2027-01-01 08:00")
        );
        assert_eq!(
            next("*/15 * * * *", "UTC", "2026-11-30 10:16"),
            utc("2026-11-30 10:30")
        );
    }

    #[test]
    fn impossible_cron_is_rejected_rare_one_accepted() {
        assert_eq!(
            err("0 0 30 2 *", "UTC"),
            "\"0 0 30 2 *\": never due (no date matches it, e.g. February 30)"
        );
        // Feb 29 that is also a Monday ("+" = day-of-month AND day-of-week): rare but real
        let s = sched("0 0 29 2 +MON", "UTC");
        assert_eq!(
            s.next_after(utc("2026-01-01 00:00")),
            Some(utc("2044-02-29 00:00"))
        );
        assert_eq!(
            s.last_at_or_before(utc("2026-01-01 00:00")),
            Some(utc("2016-02-29 00:00"))
        );
    }

    // ----- last_at_or_before -----

    #[test]
    fn last_at_or_before_is_inclusive_and_goes_back() {
        let s = sched("daily at 08:00", "Europe/Berlin");
        // exactly a due time (08:00 CET = 07:00 UTC)
        assert_eq!(
            s.last_at_or_before(utc("2026-11-30 07:00")),
            Some(utc("2026-11-30 07:00"))
        );
        // a little after it, also with sub-seconds
        assert_eq!(
            s.last_at_or_before(utc("2026-11-30 07:00:00.250")),
            Some(utc("2026-11-30 07:00"))
        );
        // just before it → the previous day
        assert_eq!(
            s.last_at_or_before(utc("2026-11-30 06:59:59.999")),
            Some(utc("2026-11-29 07:00"))
        );
    }

    #[test]
    fn last_at_or_before_hourly_to_yearly() {
        let t = utc("2026-11-21 10:20");
        let cases = [
            ("hourly", "UTC", "2026-11-21 10:00"),
            ("hourly at :30", "UTC", "2026-11-21 09:30"),
            (
                "weekly on monday at 08:00",
                "Europe/Berlin",
                "2026-11-16 07:00",
            ),
            // monthly, 20 days back
            ("monthly on 1 at 07:30", "Europe/Berlin", "2026-11-01 06:30"),
            // monthly on 31, November lacks it → October 31 (CET since Oct 25)
            (
                "monthly on 31 at 08:00",
                "Europe/Berlin",
                "2026-10-31 07:00",
            ),
            // yearly, ~11 months back
            ("0 6 1 1 *", "UTC", "2026-01-01 06:00"),
            // yearly, more than a year back
            ("0 6 29 2 *", "UTC", "2024-02-29 06:00"),
        ];
        for (spec, tz, want) in cases {
            assert_eq!(
                sched(spec, tz).last_at_or_before(t),
                Some(utc(want)),
                "{spec}"
            );
        }
    }

    // ----- DST -----

    #[test]
    fn dst_gap_runs_once_at_the_shifted_instant() {
        // 2026-03-29: Berlin clocks jump 02:00 CET → 03:00 CEST (01:00 UTC); 02:30 does not exist
        let s = sched("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            runs_on_local_date(&s, "2026-03-29"),
            vec![utc("2026-03-29 01:00")] // 03:00 CEST, the first minute after the gap
        );
        // the days around it are normal
        assert_eq!(
            runs_on_local_date(&s, "2026-03-28"),
            vec![utc("2026-03-28 01:30")]
        );
        assert_eq!(
            runs_on_local_date(&s, "2026-03-30"),
            vec![utc("2026-03-30 00:30")]
        );
        // backwards search agrees
        assert_eq!(
            s.last_at_or_before(utc("2026-03-29 12:00")),
            Some(utc("2026-03-29 01:00"))
        );
    }

    #[test]
    fn dst_overlap_runs_once() {
        // 2026-10-25: Berlin clocks go 03:00 CEST → 02:00 CET (01:00 UTC); 02:30 happens twice
        let s = sched("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            runs_on_local_date(&s, "2026-10-25"),
            vec![utc("2026-10-25 00:30")] // 02:30 CEST, the first occurrence only
        );
        assert_eq!(
            s.next_after(utc("2026-10-25 00:30")),
            Some(utc("2026-10-26 01:30"))
        );
        // from inside the second pass (02:45 CET) back to the single run
        assert_eq!(
            s.last_at_or_before(utc("2026-10-25 01:45")),
            Some(utc("2026-10-25 00:30"))
        );
        // an hourly job runs every real hour: 25 runs on the 25-hour day
        let hourly = sched("hourly", "Europe/Berlin");
        assert_eq!(runs_on_local_date(&hourly, "2026-10-25").len(), 25);
        assert_eq!(runs_on_local_date(&hourly, "2026-03-29").len(), 23);
    }

    // ----- errors -----

    #[test]
    fn error_messages() {
        assert_eq!(
            err("daily", "Europe/Berln"),
            "unknown time zone \"Europe/Berln\" (an IANA name such as Europe/Berlin or UTC)"
        );
        assert_eq!(
            err("daily at 25:00", "UTC"),
            "\"daily at 25:00\": hours are 00-23"
        );
        assert_eq!(
            err("daily at 08:60", "UTC"),
            "\"daily at 08:60\": minutes are 00-59"
        );
        assert_eq!(
            err("hourly at :75", "UTC"),
            "\"hourly at :75\": minutes are 00-59"
        );
        assert_eq!(
            err("daily at 8am", "UTC"),
            "\"daily at 8am\": expected a time as HH:MM (24-hour), e.g. 08:00"
        );
        assert_eq!(
            err("0 8 * *", "UTC"),
            "\"0 8 * *\": a cron expression has 5 fields (minute hour day-of-month month day-of-week)"
        );
        let six = err("0 0 8 * * *", "UTC");
        assert!(
            six.starts_with("\"0 0 8 * * *\": a cron expression has 5 fields"),
            "{six}"
        );
        assert!(six.contains("at most once a minute"), "{six}");
        assert!(err("0 0 8 * * * 2027", "UTC").contains("at most once a minute"));
        assert_eq!(
            err("weekly on funday", "UTC"),
            "\"weekly on funday\": unknown day \"funday\" (monday..sunday or mon..sun)"
        );
        assert_eq!(
            err("monthly on 32", "UTC"),
            "\"monthly on 32\": days of the month are 1-31 or \"last\""
        );
        assert_eq!(
            err("monthly on 0", "UTC"),
            "\"monthly on 0\": days of the month are 1-31 or \"last\""
        );
        assert!(
            err("daily on monday", "UTC")
                .starts_with("\"daily on monday\": expected \"daily\" or \"daily at HH:MM\"")
        );
        assert!(err("weekly at", "UTC").starts_with("\"weekly at\": expected \"weekly\""));
        assert!(
            err("fortnightly at 08:00", "UTC")
                .starts_with("\"fortnightly at 08:00\": unknown schedule \"fortnightly\"")
        );
        assert!(err("@daily", "UTC").contains("@-nicknames are not accepted"));
        assert!(err("   ", "UTC").starts_with("the schedule is empty"));
        let bad = err("61 8 * * *", "UTC");
        assert!(
            bad.starts_with("\"61 8 * * *\": invalid cron expression ("),
            "{bad}"
        );
    }

    // ----- resolve_time -----

    // Wed 2026-11-25 14:37:21.5 UTC = 15:37:21.5 CET
    const NOW: &str = "2026-11-25 14:37:21.500";

    #[test]
    fn resolve_now_and_offsets() {
        let cases = [
            ("now", "2026-11-25 14:37:21.500"),
            (" now ", "2026-11-25 14:37:21.500"),
            ("now-30s", "2026-11-25 14:36:51.500"),
            ("now-5m", "2026-11-25 14:32:21.500"),
            ("now-1h", "2026-11-25 13:37:21.500"),
            ("now+2h", "2026-11-25 16:37:21.500"),
            ("now-7d", "2026-11-18 14:37:21.500"),
            ("now-d", "2026-11-24 14:37:21.500"),
            ("now-2w", "2026-11-11 14:37:21.500"),
            // 15:37 CET on 2026-10-25 (CET again since 01:00 UTC that day)
            ("now-1M", "2026-10-25 14:37:21.500"),
            // two calendar months back crosses DST: 15:37 CEST = 13:37 UTC
            ("now-2M", "2026-09-25 13:37:21.500"),
            ("now-1y", "2025-11-25 14:37:21.500"),
            ("now-1d-2h", "2026-11-24 12:37:21.500"),
        ];
        for (expr, want) in cases {
            for end in [false, true] {
                assert_eq!(resolve(expr, NOW, end), utc(want), "{expr} end={end}");
            }
        }
    }

    #[test]
    fn resolve_rounding_then_offset() {
        // 08:00 CET today as a from; as a to, the end of today + 8 h
        assert_eq!(resolve("now/d+8h", NOW, false), utc("2026-11-25 07:00"));
        assert_eq!(
            resolve("now/d+8h", NOW, true),
            utc("2026-11-26 06:59:59.999")
        );
    }

    #[test]
    fn resolve_rounding_from_and_to() {
        let cases = [
            (
                "now/s",
                "2026-11-25 14:37:21.000",
                "2026-11-25 14:37:21.999",
            ),
            (
                "now/m",
                "2026-11-25 14:37:00.000",
                "2026-11-25 14:37:59.999",
            ),
            (
                "now/h",
                "2026-11-25 14:00:00.000",
                "2026-11-25 14:59:59.999",
            ),
            // local day in CET
            (
                "now/d",
                "2026-11-24 23:00:00.000",
                "2026-11-25 22:59:59.999",
            ),
            (
                "now-1d/d",
                "2026-11-23 23:00:00.000",
                "2026-11-24 22:59:59.999",
            ),
            // week Monday 2026-11-23 .. Sunday 2026-11-29
            (
                "now/w",
                "2026-11-22 23:00:00.000",
                "2026-11-29 22:59:59.999",
            ),
            (
                "now/M",
                "2026-10-31 23:00:00.000",
                "2026-11-30 22:59:59.999",
            ),
            // October starts in CEST and ends in CET
            (
                "now-1M/M",
                "2026-09-30 22:00:00.000",
                "2026-10-31 22:59:59.999",
            ),
            (
                "now/y",
                "2025-12-31 23:00:00.000",
                "2026-12-31 22:59:59.999",
            ),
        ];
        for (expr, from, to) in cases {
            assert_eq!(resolve(expr, NOW, false), utc(from), "{expr} as from");
            assert_eq!(resolve(expr, NOW, true), utc(to), "{expr} as to");
        }
    }

    #[test]
    fn resolve_week_on_sunday_starts_monday() {
        // Sunday 2026-11-29 15:00 CET
        let now = "2026-11-29 14:00";
        assert_eq!(resolve("now/w", now, false), utc("2026-11-22 23:00"));
        assert_eq!(resolve("now/w", now, true), utc("2026-11-29 22:59:59.999"));
        // Monday 00:30 CET is in the new week
        let monday = "2026-11-29 23:30";
        assert_eq!(resolve("now/w", monday, false), utc("2026-11-29 23:00"));
    }

    #[test]
    fn resolve_month_arithmetic_clamps() {
        // Mar 31 10:00 CEST → Feb 28 10:00 CET
        assert_eq!(
            resolve("now-1M", "2026-03-31 08:00", false),
            utc("2026-02-28 09:00")
        );
        // leap year
        assert_eq!(
            resolve("now-1M", "2028-03-31 08:00", false),
            utc("2028-02-29 09:00")
        );
        // Jan 31 → Dec 31
        assert_eq!(
            resolve("now-1M", "2026-01-31 09:00", false),
            utc("2025-12-31 09:00")
        );
        // Feb 29 - 1y → Feb 28
        assert_eq!(
            resolve("now-1y", "2028-02-29 09:00", false),
            utc("2027-02-28 09:00")
        );
    }

    #[test]
    fn resolve_across_dst() {
        // now = 2026-03-29 12:00 CEST: a day back is 12:00 CET (11:00 UTC), not 24 h back
        assert_eq!(
            resolve("now-1d", "2026-03-29 10:00", false),
            utc("2026-03-28 11:00")
        );
        assert_eq!(
            resolve("now-24h", "2026-03-29 10:00", false),
            utc("2026-03-28 10:00")
        );
        // the 25-hour day 2026-10-25
        assert_eq!(
            resolve("now/d", "2026-10-25 12:00", false),
            utc("2026-10-24 22:00")
        );
        assert_eq!(
            resolve("now/d", "2026-10-25 12:00", true),
            utc("2026-10-25 22:59:59.999")
        );
        // rounding inside the repeated hour stays in that pass (02:30 CET → 02:00 CET)
        assert_eq!(
            resolve("now/h", "2026-10-25 01:30", false),
            utc("2026-10-25 01:00")
        );
        assert_eq!(
            resolve("now/h", "2026-10-25 00:30", true),
            utc("2026-10-25 00:59:59.999")
        );
        // landing in the spring-forward gap (02:30 does not exist) moves forward by the gap
        assert_eq!(
            resolve("now-1d", "2026-03-30 00:30", false), // 02:30 CEST on the 30th
            utc("2026-03-29 01:30")                       // 03:30 CEST
        );
    }

    #[test]
    fn resolve_absolute_forms() {
        let now = utc(NOW);
        assert_eq!(
            resolve_time("1700000000000", now, BERLIN, false).unwrap(),
            DateTime::from_timestamp_millis(1_700_000_000_000).unwrap()
        );
        assert_eq!(
            resolve_time("2026-11-23T08:00:00+01:00", now, BERLIN, true).unwrap(),
            utc("2026-11-23 07:00")
        );
        assert_eq!(
            resolve_time("2026-11-23T07:00:00Z", now, BERLIN, false).unwrap(),
            utc("2026-11-23 07:00")
        );
    }

    #[test]
    fn resolve_errors() {
        let now = utc(NOW);
        let e = |expr: &str| resolve_time(expr, now, BERLIN, false).unwrap_err();
        assert_eq!(
            e("now-7x"),
            "\"now-7x\": unknown unit \"x\" (s, m, h, d, w, M or y; M is months, m is minutes)"
        );
        assert_eq!(
            e("now-7"),
            "\"now-7\": missing unit after \"-7\" (s, m, h, d, w, M or y)"
        );
        assert!(e("now*2").starts_with("\"now*2\": expected +, - or / after \"now\""));
        assert!(e("now/2d").contains("rounding takes a unit without a number"));
        assert!(e("yesterday").starts_with("\"yesterday\": not a time expression"));
        assert!(e("").starts_with("the time expression is empty"));
        assert!(e("99999999999999999999").contains("out of range"));
        assert!(e("now-99999999999y").contains("out of range"));
    }

    // ----- resolve_range -----

    #[test]
    fn range_resolves_at_due_time() {
        let due = utc("2026-11-30 07:00"); // Mon 08:00 CET
        let r = resolve_range("now-7d", "now", due, BERLIN).unwrap();
        assert_eq!(r.from, utc("2026-11-23 07:00"));
        assert_eq!(r.to, due);
        assert_eq!(r.from_ms(), utc("2026-11-23 07:00").timestamp_millis());
        assert_eq!(r.to_ms(), 1_796_022_000_000);
        assert_eq!(
            r.describe(BERLIN),
            "2026-11-23 08:00 – 2026-11-30 08:00 (Europe/Berlin)"
        );
        // from=now/d to=now/d is the whole day
        let today = resolve_range("now/d", "now/d", due, BERLIN).unwrap();
        assert_eq!(today.from, utc("2026-11-29 23:00"));
        assert_eq!(today.to, utc("2026-11-30 22:59:59.999"));
        assert_eq!(
            today.describe(BERLIN),
            "2026-11-30 00:00 – 2026-11-30 23:59 (Europe/Berlin)"
        );
        // last week, Monday to Sunday
        let last_week = resolve_range("now-1w/w", "now-1w/w", due, BERLIN).unwrap();
        assert_eq!(
            last_week.describe(BERLIN),
            "2026-11-23 00:00 – 2026-11-29 23:59 (Europe/Berlin)"
        );
    }

    #[test]
    fn range_errors_when_empty() {
        let due = utc("2026-11-30 07:00");
        let e = resolve_range("now", "now-7d", due, BERLIN).unwrap_err();
        assert!(
            e.starts_with("time range \"now\" to \"now-7d\" is empty"),
            "{e}"
        );
        assert!(resolve_range("now", "now", due, BERLIN).is_err());
        assert!(resolve_range("now-1x", "now", due, BERLIN).is_err());
    }
}
