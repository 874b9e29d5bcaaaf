//! The knowledge pack's structured facts: plans, fees, roaming zones and rates, contract and
//! billing terms, as typed data.
//!
//! A pack may hold one `catalogue.toml` at its root (it is data, not a document: ingestion skips
//! it). The dialogue computes answers over it ("3 Basic lines cost...", "the cheapest plan with
//! 5G...", "15 minutes in Zone 3...") so every number in those replies comes from this file,
//! never from a language model. [`Catalogue::load`] reads and validates it; every error names
//! the file and the field.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file name of a pack's catalogue, at the pack's root.
pub const CATALOGUE_FILE: &str = "catalogue.toml";

/// Largest catalogue file read.
const MAX_CATALOGUE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {field}: {reason}")]
    Invalid { path: PathBuf, field: String, reason: String },
    #[error("two knowledge folders have a {CATALOGUE_FILE}: {first} and {second}; keep one")]
    Two { first: PathBuf, second: PathBuf },
}

/// A plan as customers compare plans.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFacts {
    pub id: String,
    pub name: String,
    /// Shorter names customers use ("basic", "unlimited").
    #[serde(default)]
    pub also_called: Vec<String>,
    /// Monthly price of the plan (for every line it covers).
    pub price: f64,
    /// Data per billing cycle, in GB (shared by all lines when `max_lines` > 1).
    pub data_gb: f64,
    pub refuel_price_per_gb: f64,
    /// Unlimited nationwide calls and texts.
    pub calls: bool,
    pub five_g: bool,
    /// Lines one plan price covers (a shared plan has more than one).
    #[serde(default = "one")]
    pub max_lines: u32,
    #[serde(default)]
    pub hotspot: bool,
    /// Calls from home to Zone 1 (Canada and Mexico) included.
    #[serde(default)]
    pub international_calls_zone1: bool,
    /// The document that describes the plan.
    pub source: String,
}

fn one() -> u32 {
    1
}

/// A one-off or recurring fee.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fee {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub also_called: Vec<String>,
    pub amount: f64,
    /// What the amount is counted per: `once`, `month`, `bill`, `payment`, `remaining_month`.
    pub per: String,
    /// The most it can come to (the early termination fee's cap).
    #[serde(default)]
    pub cap: Option<f64>,
    /// When and how it is charged, in the operator's words (one or two sentences).
    pub note: String,
    pub source: String,
}

const FEE_PERIODS: &[&str] = &["once", "month", "bill", "payment", "remaining_month"];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefuelTerms {
    pub max_gb_per_refuel: f64,
    pub rolls_over: bool,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub zone: u32,
    pub name: String,
    /// Countries and cities in the zone, as customers name them (matched case-insensitively as
    /// whole words). The zone with `rest_of_world` takes every other place abroad.
    #[serde(default)]
    pub places: Vec<String>,
    #[serde(default)]
    pub rest_of_world: bool,
    /// Calls made or received, per minute; `0` when included.
    pub call_per_minute: f64,
    /// Texts sent, each.
    pub text_each: f64,
    /// Used exactly as at home.
    #[serde(default)]
    pub as_at_home: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roaming {
    /// Data abroad comes out of the plan's allowance at no extra charge.
    pub data_from_allowance: bool,
    /// Wi-Fi calls abroad are billed as at home.
    pub wifi_calling_as_home: bool,
    pub activation_fee: f64,
    /// Where roaming does not work ("cruise ships").
    #[serde(default)]
    pub not_covered: Vec<String>,
    pub zones: Vec<Zone>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractTerms {
    /// No early termination fee when a line is closed within this many days of activation.
    pub cooling_off_days: u32,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspensionTerms {
    /// The plan's price is still charged while a line is suspended.
    pub plan_charge_continues: bool,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageCredit {
    /// The credit per full day without service is the monthly price divided by this.
    pub days_per_month: f64,
    /// Only outages longer than this many hours in a row.
    pub min_hours: u32,
    /// Ask within this many days.
    pub claim_within_days: u32,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoodwillTerms {
    pub yearly_cap: f64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionTerms {
    /// Days added to the due date (or to the day of asking, when the due date has passed).
    pub days: i64,
    /// How often: one per calendar `quarter`, `month` or `year`.
    pub one_per: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingTerms {
    /// Day of the month the cycle (and the data allowance) starts.
    pub cycle_start_day: u32,
    pub issue_day: u32,
    pub due_days_after_issue: u32,
    /// Lines can be suspended this many days after an unpaid due date.
    pub suspend_after_days_overdue: u32,
    pub source: String,
}

/// Everything the pack states as numbers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// The currency symbol amounts are written with.
    pub currency: String,
    pub plans: Vec<PlanFacts>,
    pub refuel: RefuelTerms,
    #[serde(default)]
    pub fees: Vec<Fee>,
    pub roaming: Roaming,
    pub contract: ContractTerms,
    pub suspension: SuspensionTerms,
    pub outage_credit: OutageCredit,
    pub goodwill: GoodwillTerms,
    pub payment_extension: ExtensionTerms,
    pub billing: BillingTerms,
}

impl Catalogue {
    /// The catalogue of the first folder of `dirs` that has one (`None` when none has); two
    /// catalogues are an error, as their facts could disagree.
    pub fn find(dirs: &[PathBuf]) -> Result<Option<Catalogue>, CatalogueError> {
        let mut found: Option<PathBuf> = None;
        for dir in dirs {
            let path = dir.join(CATALOGUE_FILE);
            if !path.is_file() {
                continue;
            }
            if let Some(first) = found {
                return Err(CatalogueError::Two { first, second: path });
            }
            found = Some(path);
        }
        found.map(|path| Catalogue::load(&path)).transpose()
    }

    /// Reads and validates a catalogue file.
    pub fn load(path: &Path) -> Result<Catalogue, CatalogueError> {
        let read_error = |reason: String| CatalogueError::Read { path: path.to_path_buf(), reason };
        let size = std::fs::metadata(path).map_err(|e| read_error(e.to_string()))?.len();
        if size > MAX_CATALOGUE_BYTES {
            return Err(read_error(format!("{size} bytes, more than the {MAX_CATALOGUE_BYTES}-byte limit")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
        let root = path.parent().unwrap_or(Path::new("."));
        Catalogue::parse(&text, path, Some(root))
    }

    /// Parses and validates catalogue text; `path` names it in errors, and when `root` is given
    /// every `source` must be a file under it.
    pub fn parse(text: &str, path: &Path, root: Option<&Path>) -> Result<Catalogue, CatalogueError> {
        let catalogue: Catalogue = toml::from_str(text).map_err(|error| {
            // toml names the key and the line; the message is all the operator needs.
            let reason = error.message().to_string();
            let field = error
                .span()
                .map(|span| {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "file".to_string());
            CatalogueError::Invalid { path: path.to_path_buf(), field, reason }
        })?;
        catalogue.validate(path, root)?;
        Ok(catalogue)
    }

    fn validate(&self, path: &Path, root: Option<&Path>) -> Result<(), CatalogueError> {
        let invalid = |field: String, reason: &str| CatalogueError::Invalid {
            path: path.to_path_buf(),
            field,
            reason: reason.to_string(),
        };
        let amount = |field: String, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(invalid(field, "must be a number of 0 or more"))
            }
        };
        let positive = |field: String, value: f64| {
            if value.is_finite() && value > 0.0 { Ok(()) } else { Err(invalid(field, "must be more than 0")) }
        };
        let source = |field: String, value: &str| {
            if value.trim().is_empty() {
                return Err(invalid(field, "must name the document that states these facts"));
            }
            if let Some(root) = root
                && !root.join(value).is_file()
            {
                return Err(invalid(field, &format!("no document {value:?} in this pack")));
            }
            Ok(())
        };
        if self.currency.trim().is_empty() {
            return Err(invalid("currency".into(), "must not be empty"));
        }
        if self.plans.is_empty() {
            return Err(invalid("plans".into(), "the catalogue has no plans"));
        }
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        for (i, plan) in self.plans.iter().enumerate() {
            let field = |name: &str| format!("plans[{i}].{name}");
            if plan.id.trim().is_empty() || !ids.insert(plan.id.to_lowercase()) {
                return Err(invalid(field("id"), "must be present and unique"));
            }
            if plan.name.trim().is_empty() {
                return Err(invalid(field("name"), "must not be empty"));
            }
            for name in std::iter::once(&plan.name).chain(&plan.also_called) {
                if !names.insert(name.to_lowercase()) {
                    return Err(invalid(field("also_called"), &format!("{name:?} names two plans")));
                }
            }
            amount(field("price"), plan.price)?;
            positive(field("data_gb"), plan.data_gb)?;
            amount(field("refuel_price_per_gb"), plan.refuel_price_per_gb)?;
            if plan.max_lines == 0 {
                return Err(invalid(field("max_lines"), "must be 1 or more"));
            }
            source(field("source"), &plan.source)?;
        }
        positive("refuel.max_gb_per_refuel".into(), self.refuel.max_gb_per_refuel)?;
        source("refuel.source".into(), &self.refuel.source)?;
        let mut fee_ids = HashSet::new();
        for (i, fee) in self.fees.iter().enumerate() {
            let field = |name: &str| format!("fees[{i}].{name}");
            if fee.id.trim().is_empty() || !fee_ids.insert(fee.id.as_str()) {
                return Err(invalid(field("id"), "must be present and unique"));
            }
            if fee.name.trim().is_empty() {
                return Err(invalid(field("name"), "must not be empty"));
            }
            amount(field("amount"), fee.amount)?;
            if let Some(cap) = fee.cap {
                amount(field("cap"), cap)?;
            }
            if fee.note.trim().is_empty() {
                return Err(invalid(field("note"), "must say when the fee is charged"));
            }
            if !FEE_PERIODS.contains(&fee.per.as_str()) {
                return Err(invalid(field("per"), &format!("must be one of {}", FEE_PERIODS.join(", "))));
            }
            source(field("source"), &fee.source)?;
        }
        if self.roaming.zones.is_empty() {
            return Err(invalid("roaming.zones".into(), "no zones"));
        }
        let mut places = HashSet::new();
        let mut zone_numbers = HashSet::new();
        for (i, zone) in self.roaming.zones.iter().enumerate() {
            let field = |name: &str| format!("roaming.zones[{i}].{name}");
            if !zone_numbers.insert(zone.zone) {
                return Err(invalid(field("zone"), "two zones have this number"));
            }
            amount(field("call_per_minute"), zone.call_per_minute)?;
            amount(field("text_each"), zone.text_each)?;
            for place in &zone.places {
                if !places.insert(place.to_lowercase()) {
                    return Err(invalid(field("places"), &format!("{place:?} is in two zones")));
                }
            }
        }
        if self.roaming.zones.iter().filter(|zone| zone.rest_of_world).count() > 1 {
            return Err(invalid("roaming.zones".into(), "only one zone can be the rest of the world"));
        }
        amount("roaming.activation_fee".into(), self.roaming.activation_fee)?;
        source("roaming.source".into(), &self.roaming.source)?;
        source("contract.source".into(), &self.contract.source)?;
        source("suspension.source".into(), &self.suspension.source)?;
        positive("outage_credit.days_per_month".into(), self.outage_credit.days_per_month)?;
        source("outage_credit.source".into(), &self.outage_credit.source)?;
        amount("goodwill.yearly_cap".into(), self.goodwill.yearly_cap)?;
        source("goodwill.source".into(), &self.goodwill.source)?;
        if self.payment_extension.days <= 0 {
            return Err(invalid("payment_extension.days".into(), "must be more than 0"));
        }
        if !["quarter", "month", "year"].contains(&self.payment_extension.one_per.as_str()) {
            return Err(invalid("payment_extension.one_per".into(), "must be quarter, month or year"));
        }
        source("payment_extension.source".into(), &self.payment_extension.source)?;
        for (name, day) in
            [("billing.cycle_start_day", self.billing.cycle_start_day), ("billing.issue_day", self.billing.issue_day)]
        {
            if !(1..=28).contains(&day) {
                return Err(invalid(name.into(), "must be a day of the month from 1 to 28"));
            }
        }
        source("billing.source".into(), &self.billing.source)?;
        Ok(())
    }

    /// The plan with this id or name (any case, or one of its shorter names).
    pub fn plan(&self, id_or_name: &str) -> Option<&PlanFacts> {
        let wanted = id_or_name.trim().to_lowercase();
        self.plans.iter().find(|plan| {
            plan.id.to_lowercase() == wanted
                || plan.name.to_lowercase() == wanted
                || plan.also_called.iter().any(|name| name.to_lowercase() == wanted)
        })
    }

    /// The roaming zone of a place abroad named in `text` (lowercase words), with the place as
    /// written in the catalogue. The longest place wins ("mexico city" over "mexico").
    pub fn zone_of_place(&self, text: &str) -> Option<(&Zone, &str)> {
        let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let mut best: Option<(&Zone, &str, usize)> = None;
        for zone in &self.roaming.zones {
            for place in &zone.places {
                let lower = place.to_lowercase();
                let place_words: Vec<&str> = lower.split_whitespace().collect();
                let found =
                    !place_words.is_empty() && words.windows(place_words.len()).any(|w| w == place_words.as_slice());
                if found && best.is_none_or(|(_, _, len)| lower.len() > len) {
                    best = Some((zone, place.as_str(), lower.len()));
                }
            }
        }
        best.map(|(zone, place, _)| (zone, place))
    }

    /// The zone numbered `n`.
    pub fn zone(&self, n: u32) -> Option<&Zone> {
        self.roaming.zones.iter().find(|zone| zone.zone == n)
    }

    /// The fee with this id.
    pub fn fee(&self, id: &str) -> Option<&Fee> {
        self.fees.iter().find(|fee| fee.id == id)
    }

    /// An amount as customers read it: `$40`, `$0.10`, `$6.50`.
    pub fn money(&self, value: f64) -> String {
        format_money(&self.currency, value)
    }
}

/// `$40`, `$0.10`, `$6.50`, `$1,200`: whole amounts without cents, others with two decimals.
pub fn format_money(currency: &str, value: f64) -> String {
    let cents = (value * 100.0).round() as i64;
    let (sign, cents) = if cents < 0 { ("-", -cents) } else { ("", cents) };
    let whole = cents / 100;
    let mut digits = whole.to_string();
    let mut grouped = String::new();
    while digits.len() > 3 {
        let tail = digits.split_off(digits.len() - 3);
        grouped = format!(",{tail}{grouped}");
    }
    let whole_text = format!("{digits}{grouped}");
    if cents % 100 == 0 {
        format!("{sign}{currency}{whole_text}")
    } else {
        format!("{sign}{currency}{whole_text}.{:02}", cents % 100)
    }
}

/// `5 GB`, `0.5 GB`, `2.25 GB`.
pub fn format_gb(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    if rounded.fract() == 0.0 { format!("{} GB", rounded as i64) } else { format!("{rounded} GB") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Catalogue {
        let (_, bytes) = crate::demo_pack::FILES.iter().find(|(name, _)| *name == CATALOGUE_FILE).unwrap();
        Catalogue::parse(std::str::from_utf8(bytes).unwrap(), Path::new(CATALOGUE_FILE), None).unwrap()
    }

    #[test]
    fn the_demo_catalogue_is_valid_and_its_sources_exist() {
        let catalogue = demo();
        assert_eq!(catalogue.plans.len(), 5);
        for plan in &catalogue.plans {
            assert!(crate::demo_pack::FILES.iter().any(|(name, _)| *name == plan.source), "{}", plan.source);
        }
        assert_eq!(catalogue.plan("unlimited").unwrap().id, "P1003");
        assert_eq!(catalogue.plan("p1001").unwrap().name, "Basic Plan");
    }

    #[test]
    fn places_find_their_zone_longest_name_first() {
        let catalogue = demo();
        assert_eq!(catalogue.zone_of_place("going to mexico city next week").unwrap().0.zone, 1);
        assert_eq!(catalogue.zone_of_place("in london").unwrap().0.zone, 2);
        assert_eq!(catalogue.zone_of_place("thailand trip").unwrap().0.zone, 3);
        assert!(catalogue.zone_of_place("at home in ohio").is_none());
    }

    #[test]
    fn money_and_data_read_as_customers_write_them() {
        assert_eq!(format_money("$", 40.0), "$40");
        assert_eq!(format_money("$", 0.1), "$0.10");
        assert_eq!(format_money("$", 6.5), "$6.50");
        assert_eq!(format_money("$", 1200.0), "$1,200");
        assert_eq!(format_money("$", -10.0), "-$10");
        assert_eq!(format_gb(5.0), "5 GB");
        assert_eq!(format_gb(0.5), "0.5 GB");
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let text =
            std::str::from_utf8(crate::demo_pack::FILES.iter().find(|(name, _)| *name == CATALOGUE_FILE).unwrap().1)
                .unwrap();
        let path = Path::new("packs/x/catalogue.toml");
        let wrong_type = text.replacen("price = 40.0", "price = \"forty\"", 1);
        let error = Catalogue::parse(&wrong_type, path, None).unwrap_err().to_string();
        assert!(error.starts_with("packs/x/catalogue.toml: line "), "{error}");
        let negative = text.replacen("price = 40.0", "price = -40.0", 1);
        let error = Catalogue::parse(&negative, path, None).unwrap_err().to_string();
        assert_eq!(error, "packs/x/catalogue.toml: plans[0].price: must be a number of 0 or more");
        let unknown = text.replacen("price = 40.0", "price = 40.0\nprise = 3", 1);
        assert!(Catalogue::parse(&unknown, path, None).unwrap_err().to_string().contains("prise"));
        let dir = tempfile::tempdir().unwrap();
        let error = Catalogue::parse(text, path, Some(dir.path())).unwrap_err().to_string();
        assert!(error.contains("plans[0].source: no document"), "{error}");
        let twice = text.replacen("also_called = [\"premium\"", "also_called = [\"basic\"", 1);
        assert!(Catalogue::parse(&twice, path, None).unwrap_err().to_string().contains("names two plans"));
    }

    #[test]
    fn two_catalogues_are_refused_and_none_is_fine() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        assert!(Catalogue::find(&[a.path().to_path_buf()]).unwrap().is_none());
        std::fs::write(a.path().join(CATALOGUE_FILE), "x").unwrap();
        std::fs::write(b.path().join(CATALOGUE_FILE), "x").unwrap();
        let error = Catalogue::find(&[a.path().to_path_buf(), b.path().to_path_buf()]).unwrap_err();
        assert!(matches!(error, CatalogueError::Two { .. }));
    }
}
