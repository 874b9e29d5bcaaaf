//! Dates, absolute ("2025-03-01", "03/01/2025", "March 3rd", "3 March 2025") and relative
//! ("today", "tomorrow", "next Friday", "in 3 days", "end of the month"), resolved against an
//! injected `today`.
//!
//! Conventions: numeric dates with slashes (or dots or dashes, with a four-digit year) are
//! month/day/year (the tau2 accounts are American) unless the first number cannot be a month
//! ("27/05/1993" is day/month/year);
//! a month and day without a year is its next occurrence on or after today; "next Friday",
//! "this Friday", "on Friday" are the first Friday after today; "end of the week" is the coming
//! Sunday. A date with a year that follows "born", "birth" or "dob", or lies more than twelve
//! years back, is a date of birth.

use std::sync::LazyLock;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use regex::Regex;

use super::numbers::{NUMBER_WORDS, word_number_tenths};
use super::{Entity, EntityValue};

const MONTHS: &str = r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?";
const WEEKDAYS: &str =
    r"mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:rs(?:day)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?";

static ISO: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b").expect("date regex"));
static SLASHED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{1,2})([/.-])(\d{1,2})([/.-])(\d{4}|\d{2})\b").expect("date regex"));
static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)\b({MONTHS})\.?\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?"))
        .expect("date regex")
});
static DAY_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({MONTHS})\b\.?(?:,?\s+(\d{{4}})\b)?"))
        .expect("date regex")
});
static RELATIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?ix)\b(?:
            (?P<day_after>the\s+day\s+after\s+tomorrow)
          | (?P<today>today|tonight)
          | (?P<tomorrow>tomorrow|tmrw|tmr)
          | (?P<yesterday>yesterday)
          | (?:the\s+)?end\s+of\s+(?:the\s+)?(?P<end_next>next\s+)?(?P<end_unit>month|week)
          | (?P<next_unit>next)\s+(?P<unit>week|month)
          | in\s+(?P<count>\d{{1,3}}|{NUMBER_WORDS}|a|an)\s+(?P<count_unit>days?|weeks?|months?)
          | (?:(?P<qualifier>next|this|coming|on|by|until|till)\s+)?(?P<weekday>{WEEKDAYS})\b
        )"
    ))
    .expect("date regex")
});
static BIRTH_CONTEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(?:born|birth\w*|dob|d\.o\.b\.?|bday)\b").expect("birth regex"));

fn month_number(name: &str) -> Option<u32> {
    let prefix: String = name.to_lowercase().chars().take(3).collect();
    let idx = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        .iter()
        .position(|m| *m == prefix)?;
    Some(idx as u32 + 1)
}

fn weekday(name: &str) -> Option<Weekday> {
    let prefix: String = name.to_lowercase().chars().take(3).collect();
    Some(match prefix.as_str() {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

fn full_year(text: &str) -> Option<i32> {
    let year: i32 = text.parse().ok()?;
    Some(if text.len() == 2 { if year < 50 { 2000 + year } else { 1900 + year } } else { year })
}

fn next_occurrence(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(today.year(), month, day);
    match this_year {
        Some(date) if date >= today => Some(date),
        _ => NaiveDate::from_ymd_opt(today.year() + 1, month, day).or(this_year),
    }
}

fn end_of_month(date: NaiveDate) -> Option<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?;
    first.checked_add_months(Months::new(1))?.pred_opt()
}

fn first_weekday_after(today: NaiveDate, weekday: Weekday) -> NaiveDate {
    let mut date = today.succ_opt().unwrap_or(today);
    while date.weekday() != weekday {
        date = date.succ_opt().unwrap_or(date);
    }
    date
}

fn relative_date(captures: &regex::Captures<'_>, today: NaiveDate) -> Option<NaiveDate> {
    if captures.name("day_after").is_some() {
        return today.checked_add_days(Days::new(2));
    }
    if captures.name("today").is_some() {
        return Some(today);
    }
    if captures.name("tomorrow").is_some() {
        return today.succ_opt();
    }
    if captures.name("yesterday").is_some() {
        return today.pred_opt();
    }
    if let Some(unit) = captures.name("end_unit") {
        let base = if captures.name("end_next").is_some() {
            match unit.as_str().to_lowercase().as_str() {
                "month" => today.checked_add_months(Months::new(1))?,
                _ => today.checked_add_days(Days::new(7))?,
            }
        } else {
            today
        };
        return match unit.as_str().to_lowercase().as_str() {
            "month" => end_of_month(base),
            _ => {
                let days_to_sunday = 6 - base.weekday().num_days_from_monday();
                base.checked_add_days(Days::new(u64::from(days_to_sunday)))
            }
        };
    }
    if let Some(unit) = captures.name("unit") {
        return match unit.as_str().to_lowercase().as_str() {
            "week" => today.checked_add_days(Days::new(7)),
            _ => NaiveDate::from_ymd_opt(today.year(), today.month(), 1)?.checked_add_months(Months::new(1)),
        };
    }
    if let (Some(count), Some(unit)) = (captures.name("count"), captures.name("count_unit")) {
        let count = match count.as_str().parse::<u64>() {
            Ok(count) => count,
            Err(_) => word_number_tenths(count.as_str())? / 10,
        };
        let unit = unit.as_str().to_lowercase();
        return if unit.starts_with("month") {
            today.checked_add_months(Months::new(u32::try_from(count).ok()?))
        } else if unit.starts_with("week") {
            today.checked_add_days(Days::new(count.checked_mul(7)?))
        } else {
            today.checked_add_days(Days::new(count))
        };
    }
    if let Some(name) = captures.name("weekday") {
        // Abbreviations alone ("sat", "sun", "wed") are too often ordinary words.
        let is_full_name = name.as_str().len() >= 6;
        if captures.name("qualifier").is_none() && !is_full_name {
            return None;
        }
        return Some(first_weekday_after(today, weekday(name.as_str())?));
    }
    None
}

struct Found {
    date: NaiveDate,
    start: usize,
    end: usize,
    has_year: bool,
}

fn find_raw_dates(text: &str, today: NaiveDate) -> Vec<Found> {
    let mut found = Vec::new();
    for c in ISO.captures_iter(text) {
        let whole = c.get(0).expect("group 0");
        let date = (|| NaiveDate::from_ymd_opt(c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?))();
        if let Some(date) = date {
            found.push(Found { date, start: whole.start(), end: whole.end(), has_year: true });
        }
    }
    for c in SLASHED.captures_iter(text) {
        let whole = c.get(0).expect("group 0");
        if c[2] != c[4] || (&c[2] != "/" && c[5].len() != 4) {
            continue;
        }
        let (Ok(first), Ok(second)) = (c[1].parse::<u32>(), c[3].parse::<u32>()) else { continue };
        // Month first, unless the first number cannot be a month ("27/05/1993").
        let (month, day) = if first > 12 && second <= 12 { (second, first) } else { (first, second) };
        let date = (|| NaiveDate::from_ymd_opt(full_year(&c[5])?, month, day))();
        if let Some(date) = date {
            found.push(Found { date, start: whole.start(), end: whole.end(), has_year: true });
        }
    }
    for (regex, month_group, day_group) in [(&*MONTH_DAY, 1, 2), (&*DAY_MONTH, 2, 1)] {
        for c in regex.captures_iter(text) {
            let whole = c.get(0).expect("group 0");
            let (Some(month), Ok(day)) = (month_number(&c[month_group]), c[day_group].parse::<u32>()) else { continue };
            // "may 5" is a date, "I may 5..." hardly ever appears; but "may" alone is never one.
            let year = c.get(3).and_then(|y| full_year(y.as_str()));
            let date = match year {
                Some(year) => NaiveDate::from_ymd_opt(year, month, day),
                None => next_occurrence(today, month, day),
            };
            if let Some(date) = date {
                found.push(Found { date, start: whole.start(), end: whole.end(), has_year: year.is_some() });
            }
        }
    }
    for c in RELATIVE.captures_iter(text) {
        let whole = c.get(0).expect("group 0");
        if let Some(date) = relative_date(&c, today) {
            found.push(Found { date, start: whole.start(), end: whole.end(), has_year: false });
        }
    }
    found
}

pub(crate) fn find_dates(text: &str, today: NaiveDate) -> Vec<Entity> {
    let birth_mentions: Vec<usize> = BIRTH_CONTEXT.find_iter(text).map(|m| m.end()).collect();
    find_raw_dates(text, today)
        .into_iter()
        .map(|found| {
            let after_birth_word = birth_mentions.iter().any(|&end| end <= found.start && found.start - end <= 40);
            let long_past = found.date.year() <= today.year() - 12;
            let value = if found.has_year && (after_birth_word || long_past) {
                EntityValue::DateOfBirth(found.date)
            } else {
                EntityValue::Date(found.date)
            };
            Entity { value, start: found.start, end: found.end }
        })
        .collect()
}

/// Parses the first date in `text` (absolute or relative to `today`).
pub fn parse_date(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    let mut found = find_raw_dates(text, today);
    found.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
    found.first().map(|f| f.date)
}
