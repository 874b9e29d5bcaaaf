use chrono::NaiveDate;
use proptest::prelude::*;

use super::*;

fn today() -> NaiveDate {
    // A Wednesday.
    NaiveDate::from_ymd_opt(2025, 3, 12).expect("date")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

fn extractor() -> EntityExtractor {
    let plans = [
        ("P1001", "Basic Plan"),
        ("P1002", "Premium Plan"),
        ("P1003", "Unlimited Plus"),
        ("P1004", "Family Share"),
        ("P1005", "IoT Basic"),
    ]
    .into_iter()
    .map(|(plan_id, name)| PlanCatalogEntry { plan_id: plan_id.to_string(), name: name.to_string() })
    .collect();
    EntityExtractor::new(plans, today())
}

fn values(text: &str) -> Vec<EntityValue> {
    extractor().extract(text).into_iter().map(|e| e.value).collect()
}

#[track_caller]
fn check(text: &str, expected: &[EntityValue]) {
    assert_eq!(values(text), expected, "text: {text:?}");
}

#[track_caller]
fn check_phone(text: &str, expected: &str) {
    check(text, &[EntityValue::PhoneNumber(expected.to_string())]);
}

fn usd(cents: i64) -> EntityValue {
    EntityValue::Money(Money { cents, currency: "USD".to_string() })
}

fn money(cents: i64, currency: &str) -> EntityValue {
    EntityValue::Money(Money { cents, currency: currency.to_string() })
}

fn mb(megabytes: u64) -> EntityValue {
    EntityValue::DataAmount(DataAmount { megabytes })
}

fn plan(plan_id: &str, name: &str) -> EntityValue {
    EntityValue::Plan { plan_id: plan_id.to_string(), name: name.to_string() }
}

fn id(kind: IdKind, id: &str) -> EntityValue {
    EntityValue::Id { kind, id: id.to_string() }
}

#[test]
fn phone_numbers_in_common_formats() {
    check_phone("my number is 555-123-2002", "555-123-2002");
    check_phone("(555) 123-2002", "555-123-2002");
    check_phone("call me at (555)123-2002 please", "555-123-2002");
    check_phone("5551232002", "555-123-2002");
    check_phone("+1 555 123 2002", "555-123-2002");
    check_phone("+1-555-123-2002", "555-123-2002");
    check_phone("1 555 123 2002", "555-123-2002");
    check_phone("555.123.2002", "555-123-2002");
    check_phone("555 123 2002.", "555-123-2002");
    check_phone("it's 555-123-2002, thanks", "555-123-2002");
    check_phone("+44 20 7946 0958", "+442079460958");
}

#[test]
fn phone_number_negatives() {
    check("B1005", &[id(IdKind::Bill, "B1005")]);
    check("my bill is B1005 not a phone", &[id(IdKind::Bill, "B1005")]);
    check("order 12345678901234", &[]);
    check("555-1234", &[]);
    check("$5551232002.50", &[usd(555123200250)]);
    check("account 123", &[]);
}

#[test]
fn phone_number_is_not_an_amount_or_data() {
    let found = values("555-123-2002 and 2 GB");
    assert_eq!(found, vec![EntityValue::PhoneNumber("555-123-2002".to_string()), mb(2000)]);
}

#[test]
fn money_amounts() {
    check("$40", &[usd(4000)]);
    check("pay $40.50 now", &[usd(4050)]);
    check("$ 40", &[usd(4000)]);
    check("$1,200.50", &[usd(120050)]);
    check("40 dollars", &[usd(4000)]);
    check("40 bucks", &[usd(4000)]);
    check("forty dollars", &[usd(4000)]);
    check("twenty five dollars", &[usd(2500)]);
    check("USD 40", &[usd(4000)]);
    check("40 usd", &[usd(4000)]);
    check("40USD", &[usd(4000)]);
    check("€5", &[money(500, "EUR")]);
    check("5 euros", &[money(500, "EUR")]);
    check("EUR 5.25", &[money(525, "EUR")]);
    check("£10", &[money(1000, "GBP")]);
    check("50 cents", &[usd(50)]);
}

#[test]
fn money_negatives() {
    check("2 GB", &[mb(2000)]);
    check("I have 40 problems", &[]);
    check("version 40.5", &[]);
}

#[test]
fn data_amounts() {
    check("2GB", &[mb(2000)]);
    check("add 2 gb please", &[mb(2000)]);
    check("500 MB", &[mb(500)]);
    check("500mb", &[mb(500)]);
    check("1.5 gb", &[mb(1500)]);
    check("two gigs", &[mb(2000)]);
    check("2 gigs", &[mb(2000)]);
    check("a gig", &[mb(1000)]);
    check("half a gig", &[mb(500)]);
    check("3 gigabytes", &[mb(3000)]);
    check("750 megs", &[mb(750)]);
    check("5g", &[mb(5000)]);
    check("1 TB", &[mb(1_000_000)]);
}

#[test]
fn data_negatives() {
    check("my 5G signal is gone", &[]);
    check("no gig", &[]);
    check("tonight", &[EntityValue::Date(today())]);
    check("0 gb", &[]);
}

#[test]
fn absolute_dates() {
    check("2025-03-01", &[EntityValue::Date(date(2025, 3, 1))]);
    check("on 03/20/2025", &[EntityValue::Date(date(2025, 3, 20))]);
    check("March 3rd", &[EntityValue::Date(date(2026, 3, 3))]);
    check("march 20", &[EntityValue::Date(date(2025, 3, 20))]);
    check("Mar 20, 2025", &[EntityValue::Date(date(2025, 3, 20))]);
    check("20th of March", &[EntityValue::Date(date(2025, 3, 20))]);
    check("3 April 2025", &[EntityValue::Date(date(2025, 4, 3))]);
    check("2025-02-30", &[]);
}

#[test]
fn relative_dates() {
    check("today", &[EntityValue::Date(today())]);
    check("tomorrow", &[EntityValue::Date(date(2025, 3, 13))]);
    check("yesterday", &[EntityValue::Date(date(2025, 3, 11))]);
    check("the day after tomorrow", &[EntityValue::Date(date(2025, 3, 14))]);
    check("next Friday", &[EntityValue::Date(date(2025, 3, 14))]);
    check("by friday", &[EntityValue::Date(date(2025, 3, 14))]);
    check("on Wednesday", &[EntityValue::Date(date(2025, 3, 19))]);
    check("Monday", &[EntityValue::Date(date(2025, 3, 17))]);
    check("end of the month", &[EntityValue::Date(date(2025, 3, 31))]);
    check("end of month", &[EntityValue::Date(date(2025, 3, 31))]);
    check("end of next month", &[EntityValue::Date(date(2025, 4, 30))]);
    check("end of the week", &[EntityValue::Date(date(2025, 3, 16))]);
    check("in 3 days", &[EntityValue::Date(date(2025, 3, 15))]);
    check("in two weeks", &[EntityValue::Date(date(2025, 3, 26))]);
    check("next week", &[EntityValue::Date(date(2025, 3, 19))]);
    check("next month", &[EntityValue::Date(date(2025, 4, 1))]);
    check("sat on it", &[]);
}

#[test]
fn end_of_month_handles_short_months_and_year_end() {
    let extractor = extractor().with_today(date(2024, 2, 10));
    assert_eq!(parse_date("end of the month", extractor.today()), Some(date(2024, 2, 29)));
    assert_eq!(parse_date("end of next month", date(2025, 12, 5)), Some(date(2026, 1, 31)));
    assert_eq!(parse_date("end of next month", date(2025, 1, 31)), Some(date(2025, 2, 28)));
}

#[test]
fn dates_of_birth() {
    check("I was born on 1985-06-15", &[EntityValue::DateOfBirth(date(1985, 6, 15))]);
    check("dob 06/15/1985", &[EntityValue::DateOfBirth(date(1985, 6, 15))]);
    check("June 15, 1985", &[EntityValue::DateOfBirth(date(1985, 6, 15))]);
    check("birthday is 15 June 1985", &[EntityValue::DateOfBirth(date(1985, 6, 15))]);
    check("27/05/1993", &[EntityValue::DateOfBirth(date(1993, 5, 27))]);
    check("27.05.1993", &[EntityValue::DateOfBirth(date(1993, 5, 27))]);
    check("05-27-1993", &[EntityValue::DateOfBirth(date(1993, 5, 27))]);
    check("January the 22nd, 1939", &[EntityValue::DateOfBirth(date(1939, 1, 22))]);
    check("the 22nd of January 1939", &[EntityValue::DateOfBirth(date(1939, 1, 22))]);
}

#[test]
fn mixed_separators_and_impossible_dates_are_not_dates() {
    check("12/05-1993", &[]);
    check("31/31/1993", &[]);
}

#[test]
fn identity_message_with_name_and_birth_date() {
    check(
        "my name is John Smith and I was born June 15, 1985",
        &[EntityValue::FullName("John Smith".to_string()), EntityValue::DateOfBirth(date(1985, 6, 15))],
    );
    check(
        "name: jane doe, dob 1990-01-02",
        &[EntityValue::FullName("Jane Doe".to_string()), EntityValue::DateOfBirth(date(1990, 1, 2))],
    );
    check("Hi, this is Anna Maria Lopez", &[EntityValue::FullName("Anna Maria Lopez".to_string())]);
    check("this is not working", &[]);
    check("i'm having trouble", &[]);
}

#[test]
fn plan_names_tolerate_typos() {
    check("switch me to the premium plan", &[plan("P1002", "Premium Plan")]);
    check("premum plan", &[plan("P1002", "Premium Plan")]);
    check("the primium one", &[plan("P1002", "Premium Plan")]);
    check("Unlimited Plus", &[plan("P1003", "Unlimited Plus")]);
    check("unlimted please", &[plan("P1003", "Unlimited Plus")]);
    check("basic plan", &[plan("P1001", "Basic Plan")]);
    check("the basic", &[plan("P1001", "Basic Plan")]);
    check("iot basic", &[plan("P1005", "IoT Basic")]);
    check("family share", &[plan("P1004", "Family Share")]);
    check("P1003", &[plan("P1003", "Unlimited Plus")]);
}

#[test]
fn plan_negatives() {
    check("on a monthly basis", &[]);
    check("plus tax", &[]);
    check("what plans do you have", &[]);
    check("limited time offer", &[]);
}

#[test]
fn account_ids() {
    check("customer C1001", &[id(IdKind::Customer, "C1001")]);
    check("c1001", &[id(IdKind::Customer, "C1001")]);
    check("line L1002", &[id(IdKind::Line, "L1002")]);
    check("bill b-1005", &[id(IdKind::Bill, "B1005")]);
    check("my id is C 1001", &[id(IdKind::Customer, "C1001")]);
    check("device D1001", &[id(IdKind::Device, "D1001")]);
    check("P9999", &[id(IdKind::Plan, "P9999")]);
    check("a 1000 times", &[]);
}

#[test]
fn yes_no_variants() {
    for yes in [
        "yes",
        "Yes.",
        "yep",
        "yup",
        "yeah sure",
        "sure",
        "go ahead",
        "Go ahead and do it",
        "please do",
        "ok",
        "OK!",
        "okay",
        "correct",
        "that's right",
        "absolutely",
        "uh yes",
        "y",
        "sounds good",
        "yes please",
        "confirm",
        "👍",
    ] {
        assert_eq!(parse_yes_no(yes), Some(true), "{yes:?}");
    }
    for no in [
        "no",
        "No.",
        "nope",
        "nah",
        "don't",
        "dont do it",
        "do not",
        "no thanks",
        "no, thank you",
        "not now",
        "never mind",
        "absolutely not",
        "cancel",
        "n",
        "oh no",
    ] {
        assert_eq!(parse_yes_no(no), Some(false), "{no:?}");
    }
    for neither in [
        "no service at home since yesterday",
        "don't have any signal since this morning at all",
        "ok so my phone is not working and I need help",
        "what",
        "",
        "   ",
        "yesterday",
        "nobody answers",
        "sure I need to check my bill, what is the total amount due",
    ] {
        assert_eq!(parse_yes_no(neither), None, "{neither:?}");
    }
}

#[test]
fn full_name_replies() {
    assert_eq!(parse_full_name("John Smith"), Some("John Smith".to_string()));
    assert_eq!(parse_full_name("john smith."), Some("John Smith".to_string()));
    assert_eq!(parse_full_name("it's Mary-Ann O'Neil"), Some("Mary-Ann O'Neil".to_string()));
    assert_eq!(parse_full_name("my name is jane doe"), Some("Jane Doe".to_string()));
    assert_eq!(parse_full_name("John"), None);
    assert_eq!(parse_full_name("my phone is broken"), None);
    assert_eq!(parse_full_name("555-123-2002"), None);
}

#[test]
fn slots_and_first_for_slot() {
    let extractor = extractor();
    assert_eq!(extractor.first_for_slot("refuel 2 gb on line L1002", "data_gb"), Some(mb(2000)));
    assert_eq!(extractor.first_for_slot("refuel 2 gb on line L1002", "line"), Some(id(IdKind::Line, "L1002")));
    assert_eq!(extractor.first_for_slot("hello", "phone_number"), None);
    if let Some(EntityValue::DataAmount(amount)) = extractor.first_for_slot("1.5 gb", "data_gb") {
        assert!((amount.gigabytes() - 1.5).abs() < 1e-9);
    } else {
        panic!("no data amount");
    }
}

#[test]
fn mixed_message_spans_do_not_overlap() {
    let text = "Hi, my number is (555) 123-2002, please add 2 gigs for $10 on L1002 by next Friday";
    let entities = extractor().extract(text);
    let found: Vec<_> = entities.iter().map(|e| (e.value.clone(), e.text(text).to_string())).collect();
    assert_eq!(
        found,
        vec![
            (EntityValue::PhoneNumber("555-123-2002".to_string()), "(555) 123-2002".to_string()),
            (mb(2000), "2 gigs".to_string()),
            (usd(1000), "$10".to_string()),
            (id(IdKind::Line, "L1002"), "L1002".to_string()),
            (EntityValue::Date(date(2025, 3, 14)), "next Friday".to_string()),
        ]
    );
}

#[test]
fn hostile_input_is_bounded() {
    let huge = "5".repeat(100_000);
    let _ = extractor().extract(&huge);
    let unicode = "💥ünï¢ødé 555-123-2002 ✓".repeat(2000);
    let entities = extractor().extract(&unicode);
    assert!(entities.iter().all(|e| e.end <= MAX_EXTRACT_BYTES + 4));
    assert!(extractor().extract("").is_empty());
    assert!(extractor().extract("\u{0}\u{1}\u{7f}").is_empty());
}

proptest! {
    #[test]
    fn any_nanp_number_normalises_in_every_format(area in 200u32..999, exchange in 200u32..999, subscriber in 0u32..9999) {
        let expected = format!("{area:03}-{exchange:03}-{subscriber:04}");
        for text in [
            format!("{area}-{exchange}-{subscriber:04}"),
            format!("({area}) {exchange}-{subscriber:04}"),
            format!("{area}{exchange}{subscriber:04}"),
            format!("+1 {area} {exchange} {subscriber:04}"),
            format!("{area}.{exchange}.{subscriber:04}"),
        ] {
            let found = values(&format!("my number is {text} thanks"));
            prop_assert_eq!(found, vec![EntityValue::PhoneNumber(expected.clone())], "{}", text);
        }
    }

    #[test]
    fn dollar_amounts_round_trip_exactly(dollars in 0u32..100_000, cents in 0u32..100) {
        let text = format!("pay ${dollars}.{cents:02} now");
        let expected = i64::from(dollars) * 100 + i64::from(cents);
        prop_assert_eq!(values(&text), vec![usd(expected)]);
    }

    #[test]
    fn data_amounts_round_trip(gigabytes in 1u32..500, unit in prop::sample::select(vec!["GB", "gb", " GB", " gigs", " gigabytes"])) {
        let text = format!("add {gigabytes}{unit}");
        prop_assert_eq!(values(&text), vec![mb(u64::from(gigabytes) * 1000)]);
    }

    #[test]
    fn bill_ids_are_never_phone_numbers(number in 1000u32..999_999) {
        let found = values(&format!("bill B{number}"));
        prop_assert_eq!(found, vec![id(IdKind::Bill, &format!("B{number}"))]);
    }

    #[test]
    fn extraction_never_panics(text in "\\PC{0,200}") {
        let entities = extractor().extract(&text);
        for entity in entities {
            prop_assert!(entity.start < entity.end && entity.end <= text.len());
        }
    }
}
