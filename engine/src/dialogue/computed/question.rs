//! A customer's question read for computed answers: the plans it names, amounts of data,
//! minutes, texts, months, days, money, places abroad and dates, with number words as digits.

use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use inference::entities::{EntityExtractor, EntityValue, word_value};
use knowledge::catalogue::{Catalogue, PlanFacts, Zone};
use regex::{Captures, Regex};

/// A plan named in the question, with its byte span in [`Question::text`].
#[derive(Debug, Clone)]
pub(super) struct PlanMention<'c> {
    pub plan: &'c PlanFacts,
    pub start: usize,
    pub end: usize,
}

/// An amount of data named in the question, in GB, with its byte span.
#[derive(Debug, Clone, Copy)]
pub(super) struct DataMention {
    pub gb: f64,
    pub start: usize,
    pub end: usize,
}

/// A roaming zone named in the question, by number or by a place in it.
#[derive(Debug, Clone)]
pub(super) struct ZoneMention<'c> {
    pub zone: &'c Zone,
    /// The place as the catalogue writes it, when the zone was named by a place.
    pub place: Option<String>,
}

pub(super) struct Question<'c> {
    pub catalogue: &'c Catalogue,
    /// Lowercase, number words as digits, one space between words.
    pub text: String,
    pub plans: Vec<PlanMention<'c>>,
    pub data: Vec<DataMention>,
    /// Money amounts, in currency units.
    pub money: Vec<f64>,
    pub minutes: Option<f64>,
    pub texts: Option<f64>,
    pub months: Option<f64>,
    /// Months named by name ("march, april and may").
    pub month_names: usize,
    pub days: Option<f64>,
    pub hours: Option<f64>,
    pub zones: Vec<ZoneMention<'c>>,
    pub dates: Vec<(usize, NaiveDate)>,
}

impl<'c> Question<'c> {
    pub fn read(catalogue: &'c Catalogue, extractor: &EntityExtractor, original: &str) -> Question<'c> {
        let text = normalise(original);
        let entities = extractor.extract(&text);
        let mut data = Vec::new();
        let mut money = Vec::new();
        let mut dates = Vec::new();
        for entity in &entities {
            match &entity.value {
                EntityValue::DataAmount(amount) => {
                    data.push(DataMention { gb: amount.gigabytes(), start: entity.start, end: entity.end });
                }
                EntityValue::Money(amount) => money.push(amount.cents as f64 / 100.0),
                EntityValue::Date(date) => dates.push((entity.start, *date)),
                _ => {}
            }
        }
        // "6 more gb", "2 extra gigs": amounts the extractor leaves to the words around them.
        for caps in MORE_DATA.captures_iter(&text) {
            let whole = caps.get(0).expect("match");
            let overlaps = data.iter().any(|d: &DataMention| whole.start() < d.end && d.start < whole.end());
            if let (false, Ok(gb)) = (overlaps, caps[1].parse::<f64>()) {
                data.push(DataMention { gb, start: whole.start(), end: whole.end() });
            }
        }
        // "wants 5g", "about 5g coverage": a network generation, not 5 GB, unless usage follows
        // ("about 5g a month").
        data.retain(|mention| {
            !NETWORK_GENERATION.is_match(&text[mention.start..mention.end])
                || DATA_FOLLOWS.is_match(&text[mention.end..])
        });
        // Amounts no plan, refuel or household comes near are not answered with arithmetic.
        data.retain(|mention| mention.gb.is_finite() && mention.gb > 0.0 && mention.gb <= MAX_GB);
        money.retain(|amount| amount.is_finite() && (0.0..=MAX_NUMBER).contains(amount));
        data.sort_by_key(|mention| mention.start);
        let plans = plan_mentions(catalogue, &text, &entities);
        let zones = zone_mentions(catalogue, &text);
        let minutes = first_number(&MINUTES, &text).or_else(|| first_number(&HOURS, &text).map(|hours| hours * 60.0));
        Question {
            catalogue,
            plans,
            data,
            money,
            minutes,
            texts: first_number(&TEXTS, &text),
            months: first_number(&MONTHS, &text).or_else(|| first_number(&YEARS, &text).map(|years| years * 12.0)),
            month_names: count_month_names(&text),
            days: first_number(&DAYS, &text).or_else(|| first_number(&WEEKS, &text).map(|weeks| weeks * 7.0)),
            hours: first_number(&HOURS, &text),
            zones,
            dates,
            text,
        }
    }

    pub fn has(&self, pattern: &Regex) -> bool {
        pattern.is_match(&self.text)
    }

    /// The amount of data the customer asks for: one said as more or extra, or after "add",
    /// "buy", "need"...; else the first not said as what was used ("hit 999gb", "used its
    /// 1gb already"); else the first.
    pub fn requested_data(&self) -> Option<DataMention> {
        let asked = |d: &DataMention| {
            let said = &self.text[d.start..d.end];
            MORE_WORDS.is_match(said)
                || ASKED_AFTER.is_match(&self.text[d.end..])
                || ASKED_BEFORE.is_match(&self.text[..d.start])
        };
        let used =
            |d: &DataMention| USED_BEFORE.is_match(&self.text[..d.start]) || USED_AFTER.is_match(&self.text[d.end..]);
        self.data
            .iter()
            .find(|d| asked(d))
            .or_else(|| self.data.iter().find(|d| !used(d)))
            .or_else(|| self.data.first())
            .copied()
    }

    /// The distinct plans named, in the order first named.
    pub fn distinct_plans(&self) -> Vec<&'c PlanFacts> {
        let mut plans: Vec<&PlanFacts> = Vec::new();
        for mention in &self.plans {
            if !plans.iter().any(|plan| plan.id == mention.plan.id) {
                plans.push(mention.plan);
            }
        }
        plans
    }

    /// The distinct zones named, in order.
    pub fn distinct_zones(&self) -> Vec<&ZoneMention<'c>> {
        let mut zones: Vec<&ZoneMention<'c>> = Vec::new();
        for mention in &self.zones {
            if !zones.iter().any(|zone| zone.zone.zone == mention.zone.zone) {
                zones.push(mention);
            }
        }
        zones
    }

    pub fn money(&self, value: f64) -> String {
        self.catalogue.money(value)
    }
}

/// Lowercase, typographic apostrophes made plain, number words as digits ("two lines" reads
/// "2 lines", "twenty five" reads "25"), "an hour" as "1 hour", spaces collapsed.
pub(super) fn normalise(text: &str) -> String {
    let lower = text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'").replace(['\u{201c}', '\u{201d}'], "\"");
    let collapsed = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    let digits = NUMBER_WORDS.replace_all(&collapsed, |caps: &Captures<'_>| {
        let tens = word_value(&caps[1]).unwrap_or(0);
        let ones = caps.get(2).and_then(|m| word_value(m.as_str())).unwrap_or(0);
        (tens + ones).to_string()
    });
    let digits = HALF_HOUR.replace_all(&digits, "30 minutes");
    let digits = AN_HOUR.replace_all(&digits, "1 hour");
    digits.into_owned()
}

static NUMBER_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)(?:[ -](one|two|three|four|five|six|seven|eight|nine)\b)?\b",
    )
    .unwrap()
});
static HALF_HOUR: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bhalf an hour\b").unwrap());
static AN_HOUR: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\ban hour\b").unwrap());

const NUMBER: &str = r"(\d+(?:\.\d+)?)";

/// "5g", "4 g": how customers write a network generation (data amounts say gb or gigs).
static NETWORK_GENERATION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[2-6] ?g$").unwrap());
/// Words after an amount that make it data use ("5g a month", "5g of data").
static DATA_FOLLOWS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(of data|of internet|data\b|a month|per month|each month|every month|monthly|a mo\b|/mo\b|/month|a week|per week|each|apiece|a piece)").unwrap()
});
static MORE_WORDS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(more|extra|additional)\b").unwrap());
static ASKED_AFTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(more|extra|additional|on top|top ?up|refuel)\b").unwrap());
static ASKED_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(add|adding|buy|buying|get|need|needs|want|wants|another|top up|topup|refuel|purchase)\s+(an? |another |extra |more )?$").unwrap()
});
static USED_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(hit|hits|used|using|reached|through|burned|burnt|out of|allowance of|its|my|the|all)\s+(the |my |its |whole |entire |full )?$").unwrap()
});
static USED_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(already|allowance|limit|included|cap|pool|used|is used|are used|is gone|ran out)\b").unwrap()
});
static MORE_DATA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"{NUMBER}\s*(?:more|extra|additional)\s*(?:gb|gigs?|gigabytes?)\b")).unwrap()
});
static MINUTES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"{NUMBER}\s*(?:more\s+|extra\s+)?(?:min|mins|minutes?)\b")).unwrap());
static HOURS: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!(r"{NUMBER}\s*(?:hours?|hrs?)\b")).unwrap());
static TEXTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"{NUMBER}\s*(?:more\s+|extra\s+)?(?:texts?|sms(?:es)?|text messages?|messages?)\b")).unwrap()
});
static MONTHS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"{NUMBER}\s*(?:full\s+|whole\s+|more\s+|remaining\s+)?(?:months?|mos?|mths?)\b")).unwrap()
});
static YEARS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"{NUMBER}\s*(?:full\s+)?(?:years?|yrs?)\b")).unwrap());
static DAYS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"{NUMBER}\s*(?:full\s+|whole\s+|straight\s+)?days?\b")).unwrap());
static WEEKS: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!(r"{NUMBER}\s*(?:full\s+)?weeks?\b")).unwrap());

fn first_number(pattern: &Regex, text: &str) -> Option<f64> {
    pattern
        .captures(text)
        .and_then(|caps| caps[1].parse().ok())
        .filter(|value: &f64| value.is_finite() && *value <= MAX_NUMBER)
}

/// Largest amount of data read from a question, in GB.
const MAX_GB: f64 = 10_000.0;
/// Largest count (minutes, texts, months, days) or amount of money read from a question.
const MAX_NUMBER: f64 = 100_000.0;

static MONTH_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(january|february|march|april|june|july|august|september|october|november|december|jan|feb|apr|jun|jul|aug|sept?|oct|nov|dec)\b|(?:, |and |of |in |through |to )may\b|\bmay(?:,| and)")
        .unwrap()
});

/// Months named by name ("all of march, april and may" names 3).
fn count_month_names(text: &str) -> usize {
    MONTH_NAME.find_iter(text).count()
}

/// Plans named by the catalogue's names, shorter names and ids (longest first, not
/// overlapping), and by the entity extractor (which forgives misspellings). "Unlimited" in
/// "unlimited calls" names no plan.
fn plan_mentions<'c>(
    catalogue: &'c Catalogue,
    text: &str,
    entities: &[inference::entities::Entity],
) -> Vec<PlanMention<'c>> {
    let mut names: Vec<(String, &PlanFacts)> = Vec::new();
    for plan in &catalogue.plans {
        names.push((plan.name.to_lowercase(), plan));
        names.push((plan.id.to_lowercase(), plan));
        names.extend(plan.also_called.iter().map(|name| (name.to_lowercase(), plan)));
    }
    names.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    let mut mentions: Vec<PlanMention<'c>> = Vec::new();
    for (name, plan) in &names {
        for (start, _) in text.match_indices(name.as_str()) {
            let end = start + name.len();
            let whole_word = !text[..start].ends_with(|c: char| c.is_alphanumeric())
                && !text[end..].starts_with(|c: char| c.is_alphanumeric());
            let overlaps = mentions.iter().any(|m| start < m.end && m.start < end);
            let short_name = *name != plan.name.to_lowercase() && *name != plan.id.to_lowercase();
            if !whole_word || overlaps || (short_name && NOT_A_PLAN_AFTER.is_match(&text[end..])) {
                continue;
            }
            mentions.push(PlanMention { plan, start, end });
        }
    }
    for entity in entities {
        if let EntityValue::Plan { plan_id, .. } = &entity.value
            && let Some(plan) = catalogue.plan(plan_id)
            && !mentions.iter().any(|m| entity.start < m.end && m.start < entity.end)
            && !NOT_A_PLAN_AFTER.is_match(&text[entity.end.min(text.len())..])
        {
            mentions.push(PlanMention { plan, start: entity.start, end: entity.end });
        }
    }
    mentions.sort_by_key(|mention| mention.start);
    mentions
}

/// What follows a plan's short name ("unlimited") when it names no plan ("unlimited calls").
static NOT_A_PLAN_AFTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s+(calls?|talk|texts?|texting|minutes|nationwide|data|of \d|members?)\b").unwrap());

static ZONE_NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bzone\s*(\d)\b").unwrap());

/// Zones named by number ("zone 2") or by a place in them, in order of mention; at one
/// position the longest place wins ("mexico city" over "mexico").
fn zone_mentions<'c>(catalogue: &'c Catalogue, text: &str) -> Vec<ZoneMention<'c>> {
    let mut found: Vec<(usize, usize, ZoneMention<'c>)> = Vec::new();
    for caps in ZONE_NUMBER.captures_iter(text) {
        let whole = caps.get(0).expect("match");
        if let Some(zone) = caps[1].parse().ok().and_then(|n| catalogue.zone(n)) {
            found.push((whole.start(), whole.end(), ZoneMention { zone, place: None }));
        }
    }
    for zone in &catalogue.roaming.zones {
        for place in &zone.places {
            let lower = place.to_lowercase();
            for (start, _) in text.match_indices(lower.as_str()) {
                let end = start + lower.len();
                let whole_word = !text[..start].ends_with(|c: char| c.is_alphanumeric())
                    && !text[end..].starts_with(|c: char| c.is_alphanumeric());
                if whole_word {
                    found.push((start, end, ZoneMention { zone, place: Some(place.clone()) }));
                }
            }
        }
    }
    // Longest first at each place in the text; drop mentions inside a longer one.
    found.sort_by_key(|(start, end, _)| (*start, std::cmp::Reverse(*end)));
    let mut kept: Vec<(usize, usize, ZoneMention<'c>)> = Vec::new();
    for (start, end, mention) in found {
        if kept.iter().any(|(s, e, _)| start < *e && *s < end) {
            continue;
        }
        kept.push((start, end, mention));
    }
    kept.into_iter().map(|(_, _, mention)| mention).collect()
}

/// `date` moved into the year that puts it nearest `anchor` ("april 10" asked about a bill due
/// "april 19" is the same April, whatever today is).
pub(super) fn near(date: NaiveDate, anchor: NaiveDate) -> NaiveDate {
    [anchor.year() - 1, anchor.year(), anchor.year() + 1]
        .into_iter()
        .filter_map(|year| date.with_year(year))
        .min_by_key(|candidate| (*candidate - anchor).num_days().abs())
        .unwrap_or(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_words_become_digits() {
        assert_eq!(normalise("Two  Basic lines and ONE premium"), "2 basic lines and 1 premium");
        assert_eq!(normalise("twenty-five texts, an hour of calls"), "25 texts, 1 hour of calls");
        assert_eq!(normalise("someone tenth"), "someone tenth");
        assert_eq!(normalise("half an hour"), "30 minutes");
    }

    #[test]
    fn months_by_name_are_counted() {
        assert_eq!(count_month_names("suspended for all of march, april and may"), 3);
        assert_eq!(count_month_names("for july and august while im away"), 2);
        assert_eq!(count_month_names("may i ask how much"), 0);
    }

    #[test]
    fn a_date_moves_next_to_its_anchor() {
        let due = NaiveDate::from_ymd_opt(2026, 4, 19).unwrap();
        let asked = NaiveDate::from_ymd_opt(2027, 4, 10).unwrap();
        assert_eq!(near(asked, due), NaiveDate::from_ymd_opt(2026, 4, 10).unwrap());
        let new_year = NaiveDate::from_ymd_opt(2027, 1, 3).unwrap();
        assert_eq!(near(new_year, NaiveDate::from_ymd_opt(2026, 12, 28).unwrap()), new_year);
    }
}
