//! Data amounts: `2GB`, `500 MB`, `1.5 gb`, `2 gigs`, `two gigs`, `a gig`, `half a gig`,
//! `3 gigabytes`, `750 megs`. Stored in megabytes (1 GB = 1000 MB).

use std::sync::LazyLock;

use regex::Regex;

use super::numbers::{NUMBER_WORDS, parse_decimal_scaled, word_number_tenths};
use super::{DataAmount, Entity, EntityValue};

static DATA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)(\d+(?:\.\d+)?|\.\d+|\b(?:{NUMBER_WORDS}|half an?|half|an?))\s?-?(gigabytes?|gigs?|gb|g|megabytes?|megs?|mb|terabytes?|tb)\b"
    ))
    .expect("data regex")
});

pub(crate) fn find_data_amounts(text: &str) -> Vec<Entity> {
    let mut found = Vec::new();
    for captures in DATA.captures_iter(text) {
        let whole = captures.get(0).expect("group 0");
        if text[..whole.start()].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '$') {
            continue;
        }
        let number = &captures[1];
        let unit = captures[2].to_lowercase();
        // A bare "g" only after digits ("2g"), and never "5G" (the network generation).
        if unit == "g"
            && (!number.starts_with(|c: char| c.is_ascii_digit()) || text[whole.start()..whole.end()].ends_with('G'))
        {
            continue;
        }
        let thousandths_of_unit = match parse_decimal_scaled(number, 1000) {
            Some(value) => value,
            None => match word_number_tenths(number) {
                Some(tenths) => tenths * 100,
                None => continue,
            },
        };
        let megabytes_per_unit: u64 = if unit.starts_with('t') {
            1_000_000
        } else if unit.starts_with('m') {
            1
        } else {
            1000
        };
        let Some(megabytes) = thousandths_of_unit.checked_mul(megabytes_per_unit).map(|v| v / 1000) else { continue };
        if megabytes == 0 {
            continue;
        }
        found.push(Entity {
            value: EntityValue::DataAmount(DataAmount { megabytes }),
            start: whole.start(),
            end: whole.end(),
        });
    }
    found
}
