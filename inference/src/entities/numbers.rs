//! Numbers written as digits or words.

/// Parses a small number written in words ("two", "twenty five", "a", "half").
/// Returns tenths so "half" (5) and "one and a half" (15) stay exact.
pub(crate) fn word_number_tenths(words: &str) -> Option<u64> {
    let words = words.trim().to_lowercase().replace('-', " ");
    match words.as_str() {
        "half" | "half a" | "a half" => return Some(5),
        "a" | "an" => return Some(10),
        _ => {}
    }
    if let Some(rest) = words.strip_suffix(" and a half") {
        return word_number_tenths(rest).map(|tenths| tenths + 5);
    }
    let mut total = 0u64;
    let mut n_words = 0;
    for word in words.split_whitespace() {
        let value = match word {
            "hundred" if total > 0 && total < 10 => {
                total *= 100;
                n_words += 1;
                continue;
            }
            "hundred" => return None,
            _ => word_value(word)?,
        };
        total += value;
        n_words += 1;
    }
    (n_words > 0).then_some(total * 10)
}

/// The value of one number word ("seven" 7, "forty" 40, "hundred" 100).
pub fn word_value(word: &str) -> Option<u64> {
    Some(match word {
        "zero" => 0,
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "thirteen" => 13,
        "fourteen" => 14,
        "fifteen" => 15,
        "sixteen" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        "hundred" => 100,
        _ => return None,
    })
}

/// The regex alternation of number words (longest first).
pub(crate) const NUMBER_WORDS: &str = "(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|zero|one|two|three|four|five|six|seven|eight|nine|ten)(?: and a half)?";

/// Parses a decimal number with an optional fraction into an integer of `scale` units per one
/// ("1.5" with scale 1000 gives 1500), without floating point. Thousands separators are allowed.
pub(crate) fn parse_decimal_scaled(text: &str, scale: u64) -> Option<u64> {
    let text = text.replace(',', "");
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text.as_str(), ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut value = whole.checked_mul(scale)?;
    let mut unit = scale;
    for digit in fraction.chars() {
        let digit = u64::from(digit.to_digit(10)?);
        unit /= 10;
        if unit == 0 {
            break;
        }
        value = value.checked_add(digit * unit)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(word_number_tenths("two"), Some(20));
        assert_eq!(word_number_tenths("twenty five"), Some(250));
        assert_eq!(word_number_tenths("twenty-five"), Some(250));
        assert_eq!(word_number_tenths("a"), Some(10));
        assert_eq!(word_number_tenths("half"), Some(5));
        assert_eq!(word_number_tenths("one and a half"), Some(15));
        assert_eq!(word_number_tenths("two hundred"), Some(2000));
        assert_eq!(word_number_tenths("banana"), None);
        assert_eq!(word_number_tenths(""), None);
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal_scaled("1.5", 1000), Some(1500));
        assert_eq!(parse_decimal_scaled("40", 100), Some(4000));
        assert_eq!(parse_decimal_scaled("40.05", 100), Some(4005));
        assert_eq!(parse_decimal_scaled("1,200.50", 100), Some(120050));
        assert_eq!(parse_decimal_scaled(".5", 100), Some(50));
        assert_eq!(parse_decimal_scaled("99999999999999999999", 100), None);
        assert_eq!(parse_decimal_scaled("1.2.3", 100), None);
        assert_eq!(parse_decimal_scaled(".", 100), None);
    }
}
