//! Which menu answers at a given moment: regular hours, after hours, holidays, and the special
//! mode override. [`Schedule::period`] is a pure function of the instant (the handler passes the
//! clock), so every boundary is testable.

use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use super::config::ScheduleConfig;

/// What the schedule says about a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Period {
    /// Within regular hours.
    Open,
    /// Outside regular hours.
    Closed,
    /// A holiday (beats hours).
    Holiday,
    /// Special mode is on (beats everything).
    Special,
}

/// One `hours` entry: days of the week and a time range on each (end exclusive, in minutes).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hours {
    /// Monday first.
    days: [bool; 7],
    start: u16,
    end: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Holiday {
    On(Date),
    Yearly { month: i8, day: i8 },
}

/// A parsed `[attendant.schedule]`.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub(crate) open: String,
    closed: String,
    holiday: String,
    special: String,
    hours: Vec<Hours>,
    holidays: Vec<Holiday>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Schedule {
    /// Parses the hours and holidays; errors start with the key (`hours: ...`).
    pub(crate) fn parse(c: &ScheduleConfig) -> Result<Self, String> {
        let hours = c
            .hours
            .iter()
            .map(|h| parse_hours(h).map_err(|e| format!("hours: {h:?}: {e}")))
            .collect::<Result<_, _>>()?;
        let holidays = c
            .holidays
            .iter()
            .map(|h| {
                parse_holiday(h).ok_or_else(|| {
                    format!(
                        "holidays: {h:?} is not a date (\"2026-12-25\", or \"12-25\" every year)"
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            open: c.open.clone(),
            closed: c.closed.clone(),
            holiday: c.holiday.clone().unwrap_or_else(|| c.closed.clone()),
            special: c.special.clone().unwrap_or_else(|| c.closed.clone()),
            hours,
            holidays,
        })
    }

    /// The period at `now` in `tz`: special mode beats holidays, holidays beat hours.
    pub(crate) fn period(&self, now: Timestamp, tz: &TimeZone, special: bool) -> Period {
        if special {
            return Period::Special;
        }
        let local = now.to_zoned(tz.clone());
        let date = local.date();
        let is_holiday = self.holidays.iter().any(|h| match h {
            Holiday::On(d) => *d == date,
            Holiday::Yearly { month, day } => date.month() == *month && date.day() == *day,
        });
        if is_holiday {
            return Period::Holiday;
        }
        let day = weekday_index(date.weekday());
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        let open = self
            .hours
            .iter()
            .any(|h| h.days[day] && h.start <= minute && minute < h.end);
        if open { Period::Open } else { Period::Closed }
    }

    /// The menu for `period`.
    pub(crate) fn menu(&self, period: Period) -> &str {
        match period {
            Period::Open => &self.open,
            Period::Closed => &self.closed,
            Period::Holiday => &self.holiday,
            Period::Special => &self.special,
        }
    }
}

fn weekday_index(w: Weekday) -> usize {
    w.to_monday_zero_offset() as usize
}

/// `"mon-fri 08:30-17:00"`, `"sat,sun 10:00-14:00"`, `"daily 00:00-24:00"`.
fn parse_hours(text: &str) -> Result<Hours, String> {
    let mut parts = text.split_whitespace();
    let (Some(days), Some(times), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("write DAYS HH:MM-HH:MM, e.g. \"mon-fri 08:30-17:00\"".into());
    };
    let mut set = [false; 7];
    if days.eq_ignore_ascii_case("daily") {
        set = [true; 7];
    } else {
        for item in days.split(',') {
            let day = |d: &str| {
                DAYS.iter()
                    .position(|x| x.eq_ignore_ascii_case(d))
                    .ok_or_else(|| format!("{d:?} is not a day (mon, tue, ... sun, daily)"))
            };
            match item.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (day(a)?, day(b)?);
                    // A range may wrap past Sunday ("fri-mon").
                    let mut i = a;
                    loop {
                        set[i] = true;
                        if i == b {
                            break;
                        }
                        i = (i + 1) % 7;
                    }
                }
                None => set[day(item)?] = true,
            }
        }
    }
    let (start, end) = times
        .split_once('-')
        .ok_or_else(|| format!("{times:?} is not a time range HH:MM-HH:MM"))?;
    let (start, end) = (parse_time(start)?, parse_time(end)?);
    if start >= end {
        return Err(format!(
            "{times:?} ends before it starts; split hours past midnight in two \
             (\"mon 22:00-24:00\", \"tue 00:00-06:00\")"
        ));
    }
    Ok(Hours {
        days: set,
        start,
        end,
    })
}

/// `HH:MM` as minutes since midnight; `24:00` is the end of the day.
fn parse_time(t: &str) -> Result<u16, String> {
    let bad = || format!("{t:?} is not a time HH:MM (00:00 to 24:00)");
    let (h, m) = t.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn parse_holiday(text: &str) -> Option<Holiday> {
    let t = text.trim();
    if t.len() == 10 {
        return t.parse::<Date>().ok().map(Holiday::On);
    }
    let (m, d) = t.split_once('-')?;
    if m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (month, day): (i8, i8) = (m.parse().ok()?, d.parse().ok()?);
    // 2024 is a leap year: Feb 29 is a valid yearly holiday.
    Date::new(2024, month, day).ok()?;
    Some(Holiday::Yearly { month, day })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(hours: &[&str], holidays: &[&str]) -> Schedule {
        Schedule::parse(&ScheduleConfig {
            open: "main".into(),
            closed: "closed".into(),
            holiday: Some("holiday".into()),
            special: None,
            hours: hours.iter().map(|s| s.to_string()).collect(),
            holidays: holidays.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    fn ny() -> TimeZone {
        TimeZone::get("America/New_York").unwrap()
    }

    /// The instant of a local civil time in New York.
    fn at(civil: &str) -> Timestamp {
        civil
            .parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(ny())
            .unwrap()
            .timestamp()
    }

    fn office() -> Schedule {
        schedule(
            &["mon-fri 08:30-17:00", "sat 09:00-12:00"],
            &["2026-12-25", "01-01"],
        )
    }

    #[test]
    fn regular_hours_boundaries() {
        let s = office();
        let p = |t: &str| s.period(at(t), &ny(), false);
        // 2026-06-01 is a Monday.
        assert_eq!(p("2026-06-01T08:29:59"), Period::Closed);
        assert_eq!(p("2026-06-01T08:30:00"), Period::Open);
        assert_eq!(p("2026-06-01T16:59:59"), Period::Open);
        assert_eq!(p("2026-06-01T17:00:00"), Period::Closed, "end is exclusive");
        assert_eq!(p("2026-06-05T12:00:00"), Period::Open, "friday");
        assert_eq!(p("2026-06-06T09:00:00"), Period::Open, "saturday morning");
        assert_eq!(p("2026-06-06T12:00:00"), Period::Closed, "saturday noon");
        assert_eq!(p("2026-06-07T10:00:00"), Period::Closed, "sunday");
        assert_eq!(s.menu(Period::Open), "main");
        assert_eq!(s.menu(Period::Closed), "closed");
    }

    #[test]
    fn holidays_beat_hours_and_special_mode_beats_all() {
        let s = office();
        // 2026-12-25 is a Friday: within hours, but a holiday.
        assert_eq!(
            s.period(at("2026-12-25T10:00:00"), &ny(), false),
            Period::Holiday
        );
        // Yearly: every January 1st, whatever the year.
        assert_eq!(
            s.period(at("2027-01-01T10:00:00"), &ny(), false),
            Period::Holiday
        );
        assert_eq!(
            s.period(at("2026-12-24T10:00:00"), &ny(), false),
            Period::Open
        );
        assert_eq!(s.menu(Period::Holiday), "holiday");
        for t in [
            "2026-12-25T10:00:00",
            "2026-06-01T10:00:00",
            "2026-06-01T03:00:00",
        ] {
            assert_eq!(s.period(at(t), &ny(), true), Period::Special, "{t}");
        }
        assert_eq!(
            s.menu(Period::Special),
            "closed",
            "special defaults to closed"
        );
    }

    #[test]
    fn the_day_is_the_local_day() {
        let s = office();
        // 2026-12-25T03:00Z is still Christmas Eve evening in New York (22:00 EST): closed,
        // not a holiday; in UTC it is Christmas.
        let t: Timestamp = "2026-12-25T03:00:00Z".parse().unwrap();
        assert_eq!(s.period(t, &ny(), false), Period::Closed);
        assert_eq!(s.period(t, &TimeZone::UTC, false), Period::Holiday);
    }

    #[test]
    fn dst_days_follow_the_wall_clock() {
        let s = office();
        // 2026-03-09 (Monday) is the first working day of EDT (UTC-4, from March 8).
        // 12:30Z is 08:30 EDT: open. The same UTC instant a week earlier is 07:30 EST.
        assert_eq!(
            s.period("2026-03-09T12:30:00Z".parse().unwrap(), &ny(), false),
            Period::Open
        );
        assert_eq!(
            s.period("2026-03-02T12:30:00Z".parse().unwrap(), &ny(), false),
            Period::Closed
        );
        // On the transition day itself (Sunday 2026-03-08, 02:00 -> 03:00), hours on a
        // Sunday around the gap still follow the local clock.
        let sunday = schedule(&["sun 01:00-03:30"], &[]);
        assert_eq!(
            sunday.period("2026-03-08T06:59:00Z".parse().unwrap(), &ny(), false),
            Period::Open,
            "01:59 EST"
        );
        assert_eq!(
            sunday.period("2026-03-08T07:00:00Z".parse().unwrap(), &ny(), false),
            Period::Open,
            "03:00 EDT, one real minute later"
        );
        assert_eq!(
            sunday.period("2026-03-08T07:30:00Z".parse().unwrap(), &ny(), false),
            Period::Closed,
            "03:30 EDT"
        );
        // Fall back (2026-11-01): 01:30 happens twice; both are within 01:00-01:59.
        let nov = schedule(&["sun 01:00-01:59"], &[]);
        for utc in ["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"] {
            assert_eq!(
                nov.period(utc.parse().unwrap(), &ny(), false),
                Period::Open,
                "{utc}"
            );
        }
    }

    #[test]
    fn hours_syntax() {
        let h = parse_hours("mon,wed,fri 13:00-24:00").unwrap();
        assert_eq!(h.days, [true, false, true, false, true, false, false]);
        assert_eq!((h.start, h.end), (780, 1440));
        let h = parse_hours("fri-mon 00:00-01:00").unwrap();
        assert_eq!(
            h.days,
            [true, false, false, false, true, true, true],
            "wraps"
        );
        assert_eq!(parse_hours("daily 9:00-10:00").unwrap().days, [true; 7]);
        for bad in [
            "mon 17:00-08:00",
            "mon 08:00-08:00",
            "mon 8-9",
            "mon 08:60-09:00",
            "mon 24:30-24:40",
            "funday 08:00-09:00",
            "mon",
            "mon 08:00-09:00 extra",
            "mon-xyz 08:00-09:00",
        ] {
            assert!(parse_hours(bad).is_err(), "{bad}");
        }
        assert!(parse_holiday("2026-02-30").is_none());
        assert!(parse_holiday("02-29").is_some());
        assert!(parse_holiday("13-01").is_none());
        assert!(parse_holiday("christmas").is_none());
    }
}
