//! The options a turn offers the customer, derived from what it awaits and the account.
//!
//! The widget shows them as quick-reply buttons and WhatsApp as reply buttons or a list.
//! Choosing one sends its `value` as the customer's next message, in words the engine
//! understands (`Yes`, a plan's name, a card's type and last four digits, a line's number).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use accounts::domain::{Customer, Plan};
use accounts::{AccountStore, CustomerId};
use engine::dialogue::facts::format_gb;

/// One option offered with a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Choice {
    /// What the button shows.
    pub label: String,
    /// What choosing it sends as the customer's message.
    pub value: String,
    /// A short detail (a plan's allowance and price), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Choice {
    fn plain(text: &str) -> Self {
        Self { label: text.to_string(), value: text.to_string(), description: None }
    }
}

/// The largest refuel the policy allows, offered as quick replies (1 GB and 2 GB).
const DATA_GB_CHOICES: &[&str] = &["1 GB", "2 GB"];

/// Options for a reply awaiting `awaiting`, for the conversation's customer (if known).
pub fn choices_for(
    awaiting: Option<&str>,
    customer_id: Option<&str>,
    store: Option<&AccountStore>,
    today: NaiveDate,
) -> Vec<Choice> {
    let Some(awaiting) = awaiting else { return Vec::new() };
    let customer = || -> Option<Customer> {
        let id = CustomerId::parse(customer_id?.to_string()).ok()?;
        store?.customer(&id).ok().flatten()
    };
    match awaiting {
        "confirmation" => vec![Choice::plain("Yes"), Choice::plain("No")],
        "plan" => store.and_then(|store| store.plans().ok()).unwrap_or_default().iter().map(plan_choice).collect(),
        "payment_method" => customer()
            .map(|customer| {
                customer
                    .payment_methods
                    .iter()
                    .filter(|method| !method.expiry.is_expired_on(today))
                    .map(|method| Choice::plain(&method.to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        "line" => match (customer(), store) {
            (Some(customer), Some(store)) => customer
                .line_ids
                .iter()
                .filter_map(|id| store.line(id).ok().flatten())
                .map(|line| Choice {
                    label: line.phone_number.as_str().to_string(),
                    value: line.phone_number.as_str().to_string(),
                    description: Some(line.status().as_str().to_string()),
                })
                .collect(),
            _ => Vec::new(),
        },
        "data_gb" => DATA_GB_CHOICES.iter().map(|text| Choice::plain(text)).collect(),
        _ => Vec::new(),
    }
}

fn plan_choice(plan: &Plan) -> Choice {
    let gb = plan.data_limit.to_gb();
    let allowance = if gb >= 999.0 { "unlimited data".to_string() } else { format!("{} GB", format_gb(gb)) };
    Choice {
        label: plan.name.clone(),
        value: plan.name.clone(),
        description: Some(format!("{allowance}, {}/month", plan.price_per_month)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounts::AccountsData;

    fn demo_store() -> AccountStore {
        let data = AccountsData::from_toml_str(prompts::DEMO_ACCOUNTS).expect("demo seed parses");
        AccountStore::temporary_with(&data).expect("store")
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()
    }

    #[test]
    fn confirmations_offer_yes_and_no() {
        let choices = choices_for(Some("confirmation"), None, None, today());
        assert_eq!(choices.iter().map(|c| c.value.as_str()).collect::<Vec<_>>(), ["Yes", "No"]);
    }

    #[test]
    fn plans_come_from_the_catalogue_with_their_price() {
        let store = demo_store();
        let choices = choices_for(Some("plan"), None, Some(&store), today());
        assert_eq!(choices.len(), 5);
        let premium = choices.iter().find(|c| c.label == "Premium Plan").unwrap();
        assert_eq!(premium.description.as_deref(), Some("15 GB, $65.00/month"));
        let unlimited = choices.iter().find(|c| c.label == "Unlimited Plus").unwrap();
        assert!(unlimited.description.as_deref().unwrap().starts_with("unlimited data"));
    }

    #[test]
    fn payment_methods_and_lines_are_the_customers_own() {
        let store = demo_store();
        let methods = choices_for(Some("payment_method"), Some("C2001"), Some(&store), today());
        assert!(!methods.is_empty());
        assert!(methods.iter().all(|c| c.label.contains("•••• ")), "{methods:?}");
        let lines = choices_for(Some("line"), Some("C2006"), Some(&store), today());
        assert_eq!(lines.len(), 3, "{lines:?}");
        // Without a customer there is nothing to offer.
        assert!(choices_for(Some("payment_method"), None, Some(&store), today()).is_empty());
        assert!(choices_for(Some("line"), Some("C9999"), Some(&store), today()).is_empty());
    }

    #[test]
    fn other_questions_offer_nothing() {
        for awaiting in [None, Some("phone_number"), Some("device:check_sim_status"), Some("")] {
            assert!(choices_for(awaiting, None, None, today()).is_empty(), "{awaiting:?}");
        }
    }
}
