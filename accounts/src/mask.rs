//! Masking of personal data for people who need to recognise a customer but not know them:
//! the one place the API, the staff routes and the console mask names, numbers and emails.

/// `Tomás Herrera` -> `Tomás H.`
pub fn mask_name(full_name: &str) -> String {
    let mut words = full_name.split_whitespace();
    let Some(first) = words.next() else { return String::new() };
    match words.last().and_then(|last| last.chars().next()) {
        Some(initial) => format!("{first} {initial}."),
        None => first.to_string(),
    }
}

/// Every digit but the last four replaced: `555-010-2005` -> `•••-•••-2005`.
pub fn mask_number(raw: &str) -> String {
    let n_digits = raw.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    raw.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + 4 <= n_digits { '•' } else { c }
            } else {
                c
            }
        })
        .collect()
}

/// `sarah.j@example.com` -> `s•••@example.com`
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}•••@{domain}", local.chars().take(1).collect::<String>()),
        None => "•••".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(masked: String, expected: &str) {
        assert_eq!(masked, expected);
    }

    #[test]
    fn names_keep_the_first_name_and_last_initial() {
        check(mask_name("Tomás Herrera"), "Tomás H.");
        check(mask_name("Mary Ann de la Cruz"), "Mary C.");
        check(mask_name("Anna Maria van der Berg"), "Anna B.");
        check(mask_name("Cher"), "Cher");
        check(mask_name("   "), "");
    }

    #[test]
    fn numbers_keep_the_last_four_digits() {
        check(mask_number("555-010-2005"), "•••-•••-2005");
        check(mask_number("+1 (555) 123-2002"), "+• (•••) •••-2002");
        check(mask_number("+15550102005"), "+•••••••2005");
        check(mask_number("123"), "123");
        check(mask_number(""), "");
    }

    #[test]
    fn emails_keep_the_first_letter_and_the_domain() {
        check(mask_email("sarah.j@example.com"), "s•••@example.com");
        check(mask_email("not an email"), "•••");
        check(mask_email("@example.com"), "•••@example.com");
    }
}
