//! PostgreSQL date and time values in TEXT format: the `date`, `time`,
//! `timestamp`, `timestamptz` and `interval` grammars, with the leap-year
//! and BC-year checks they need. Part of `pg_text`, whose `decode` calls the
//! `parse_*` functions here; the forms accepted are the ones `pg_text`'s
//! header lists (ISO `DateStyle`, `TimeZone=UTC`, `IntervalStyle=iso_8601`).
//! `Cur`, the cursor these grammars are written with, is here too;
//! `pg_text::is_numeric` borrows it. The day-number arithmetic
//! (`days_from_civil`, `civil_from_days`) stays in `pg_text`, since the
//! Python conversions use it as well.

use super::{civil_from_days, days_from_civil, Value};

const HMS: &str = "expected HH:MM:SS[.ffffff]";

/// A cursor over ASCII text, for the date/time grammars (and `is_numeric`).
pub(super) struct Cur<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    pub(super) fn new(s: &'a [u8]) -> Self {
        Cur { s, i: 0 }
    }
    pub(super) fn done(&self) -> bool {
        self.i == self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    pub(super) fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }
    fn eat_str(&mut self, s: &[u8]) -> bool {
        let hit = self.s[self.i..].starts_with(s);
        if hit {
            self.i += s.len();
        }
        hit
    }
    /// Skip bytes matching `f`; how many.
    pub(super) fn run(&mut self, f: impl Fn(u8) -> bool) -> usize {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        self.i - start
    }
    /// Between `min` and `max` (at most 18) decimal digits.
    fn num(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.i;
        let n = self.run(|b| b.is_ascii_digit());
        if n < min || n > max {
            return None;
        }
        Some(
            self.s[start..self.i]
                .iter()
                .fold(0, |a, &d| a * 10 + i64::from(d - b'0')),
        )
    }
    /// `.ffffff` (1 to 6 digits) as microseconds, 0 if absent.
    fn micros(&mut self) -> Option<u32> {
        if !self.eat(b'.') {
            return Some(0);
        }
        let start = self.i;
        let f = self.num(1, 6)?;
        Some((f * 10i64.pow((6 - (self.i - start)) as u32)) as u32)
    }
    /// `YYYY-MM-DD` (4 to 9 year digits), checked; the year is as printed.
    fn date(&mut self) -> Option<(i64, u8, u8)> {
        let y = self.num(4, 9)?;
        let m = self.eat(b'-').then(|| self.num(2, 2))??;
        let d = self.eat(b'-').then(|| self.num(2, 2))??;
        (y >= 1 && (1..=12).contains(&m) && d >= 1 && d <= max_day(m as u8))
            .then_some((y, m as u8, d as u8))
    }
    /// `HH:MM:SS[.ffffff]`, checked; `24:00:00` allowed.
    fn time(&mut self) -> Option<(u8, u8, u8, u32)> {
        let h = self.num(2, 2)?;
        let mi = self.eat(b':').then(|| self.num(2, 2))??;
        let s = self.eat(b':').then(|| self.num(2, 2))??;
        let us = self.micros()?;
        let ok = (h < 24 || (h == 24 && mi == 0 && s == 0 && us == 0)) && mi < 60 && s < 60;
        ok.then_some((h as u8, mi as u8, s as u8, us))
    }
}

fn is_leap(astro_year: i64) -> bool {
    astro_year.rem_euclid(4) == 0
        && (astro_year.rem_euclid(100) != 0 || astro_year.rem_euclid(400) == 0)
}

/// The most days the month can have; February 29th is checked later, once
/// the ` BC` suffix has told which (astronomical) year it is.
fn max_day(month: u8) -> i64 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The printed year and the ` BC` suffix to an astronomical year, checking
/// the day of February 29th against the real (astronomical) leap years.
fn astro_year(c: &mut Cur<'_>, y: i64, m: u8, d: u8) -> Result<i32, &'static str> {
    let y = if c.eat_str(b" BC") { 1 - y } else { y };
    if m == 2 && d == 29 && !is_leap(y) {
        return Err("February 29th in a year that is not a leap year");
    }
    i32::try_from(y).map_err(|_| "year out of range")
}

pub(super) fn parse_date(text: &[u8]) -> Result<Value, &'static str> {
    match text {
        b"infinity" => return Ok(Value::DateInfinity(true)),
        b"-infinity" => return Ok(Value::DateInfinity(false)),
        _ => {}
    }
    let mut c = Cur::new(text);
    let (y, month, day) = c.date().ok_or("expected YYYY-MM-DD")?;
    let year = astro_year(&mut c, y, month, day)?;
    if !c.done() {
        return Err("unexpected text after the date");
    }
    Ok(Value::Date { year, month, day })
}

/// `HH:MM:SS[.ffffff]`; `24:00:00` allowed.
pub(super) fn parse_time(text: &[u8]) -> Result<Value, &'static str> {
    let mut c = Cur::new(text);
    let (hour, minute, second, micro) = c.time().ok_or(HMS)?;
    if !c.done() {
        return Err("unexpected text after the time");
    }
    Ok(Value::Time {
        hour,
        minute,
        second,
        micro,
    })
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, then for timestamptz an offset
/// `+HH[:MM[:SS]]`, then ` BC`. Timestamptz values are moved to UTC.
pub(super) fn parse_timestamp(text: &[u8], tz: bool) -> Result<Value, &'static str> {
    match text {
        b"infinity" => return Ok(Value::TimestampInfinity(true)),
        b"-infinity" => return Ok(Value::TimestampInfinity(false)),
        _ => {}
    }
    let mut c = Cur::new(text);
    let (y, month, day) = c.date().ok_or("expected YYYY-MM-DD HH:MM:SS")?;
    if !c.eat(b' ') && !c.eat(b'T') {
        return Err("expected YYYY-MM-DD HH:MM:SS");
    }
    let (hour, minute, second, micro) = c.time().ok_or(HMS)?;
    let offset = if tz {
        let sign = match c.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err("expected a UTC offset like +00 or -08:00"),
        };
        c.i += 1;
        let h = c.num(2, 2).ok_or("invalid UTC offset")?;
        let m = if c.eat(b':') {
            c.num(2, 2).ok_or("invalid UTC offset")?
        } else {
            0
        };
        let s = if c.eat(b':') {
            c.num(2, 2).ok_or("invalid UTC offset")?
        } else {
            0
        };
        if m >= 60 || s >= 60 {
            return Err("invalid UTC offset");
        }
        sign * (h * 3600 + m * 60 + s)
    } else {
        0
    };
    let year = astro_year(&mut c, y, month, day)?;
    if !c.done() {
        return Err("unexpected text after the timestamp");
    }
    if !tz {
        return Ok(Value::Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micro,
        });
    }
    let secs = days_from_civil(year.into(), month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
        - offset;
    let (y, month, day) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    Ok(Value::TimestampTz {
        year: i32::try_from(y).map_err(|_| "year out of range")?,
        month,
        day,
        hour: (tod / 3600) as u8,
        minute: (tod / 60 % 60) as u8,
        second: (tod % 60) as u8,
        micro,
    })
}

/// ISO 8601 `P[nY][nM][nW][nD][T[nH][nM][n[.f]S]]`, each number with its own
/// sign, only the seconds with a fraction; `PT0S` is zero.
pub(super) fn parse_interval(text: &[u8]) -> Result<Value, String> {
    let mut c = Cur::new(text);
    if !c.eat(b'P') {
        return Err("expected ISO 8601 form P...".into());
    }
    let (mut months, mut days, mut micros) = (0i128, 0i128, 0i128);
    let mut in_time = false;
    let mut rank = 0; // the designators must come in order, each once
    let mut any = false;
    while !c.done() {
        if !in_time && c.eat(b'T') {
            in_time = true;
            continue;
        }
        let neg = c.eat(b'-');
        if !neg {
            c.eat(b'+');
        }
        let n = i128::from(c.num(1, 18).ok_or("expected a number")?);
        let frac = if in_time && c.peek() == Some(b'.') {
            Some(i128::from(c.micros().ok_or("at most 6 fraction digits")?))
        } else {
            None
        };
        let unit = c.peek().ok_or("number without a unit")?;
        c.i += 1;
        let (r, scale) = match (in_time, unit) {
            (false, b'Y') => (1, 12),
            (false, b'M') => (2, 1),
            (false, b'W') => (3, 7),
            (false, b'D') => (4, 1),
            (true, b'H') => (5, 3_600_000_000),
            (true, b'M') => (6, 60_000_000),
            (true, b'S') => (7, 1_000_000),
            _ => return Err(format!("unexpected unit {:?}", char::from(unit))),
        };
        if r <= rank {
            return Err(format!("unit {:?} out of order", char::from(unit)));
        }
        if frac.is_some() && r != 7 {
            return Err("only seconds may have a fraction".into());
        }
        rank = r;
        any = true;
        let v = n * scale + frac.unwrap_or(0);
        let v = if neg { -v } else { v };
        match r {
            1 | 2 => months += v,
            3 | 4 => days += v,
            _ => micros += v,
        }
    }
    if !any {
        return Err("no components".into());
    }
    if in_time && rank < 5 {
        return Err("nothing after T".into());
    }
    Ok(Value::Interval {
        months: i32::try_from(months).map_err(|_| "months out of range")?,
        days: i32::try_from(days).map_err(|_| "days out of range")?,
        micros: i64::try_from(micros).map_err(|_| "time out of range")?,
    })
}
