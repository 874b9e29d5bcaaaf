//! Recommendations from described usage: who uses how much data, who needs calls, whether 5G
//! matters; the cheapest set of plans for everyone, with refuels priced against bigger plans
//! and shared plans against separate lines, and the arithmetic shown.

use std::sync::LazyLock;

use knowledge::catalogue::{PlanFacts, format_gb};
use regex::Regex;

use super::ComputedAnswer;
use super::question::{DataMention, Question};

/// One of the customer's own lines, as the account system reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct LineUsage {
    /// How the reply names the line ("the line ending 2001").
    pub label: String,
    pub data_gb: f64,
    /// The line is used for calls (its plan has them).
    pub calls: bool,
}

/// Most people one recommendation covers (the search is exhaustive over groups).
const MAX_USERS: usize = 8;

static RECOMMEND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(cheapest|cheaper|best|recommend\w*|suggest\w*|which plans?|what plans?|should (i|we)|suits?|fits?|setup|set up|options?|worth|plan for|need a plan|good plan|right plan|go for|stay on|stick with|save( money)?|way to|deal|what do (you|u) (think|suggest))\b").unwrap()
});
static USAGE_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(use|uses|using|used|need|needs|usage|go through|goes through|burn\w*|consume\w*|stream\w*|about|around|roughly|approx\w*|maybe|like|probably|prob|max|up to|under|below|less than|at most|no more than|only|just|barely|mostly)\s*$|[~(]\s*$").unwrap()
});
static USAGE_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(of data\s*)?(a month|per month|each month|every month|monthly|a mo\b|/mo\b|/month|each|apiece|per person|a piece)").unwrap()
});
static NOT_USAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(more|extra|additional)\s*$|^\s*(more|extra|refuels?|top[- ]?ups?)\b").unwrap());
static FITS_ME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(for me|fits? me|suits? me|my usage|i use|we use|my lines|our lines|should i|best plan|right plan|which plan|what plan|save money|cheaper plan)\b").unwrap()
});

/// "Which plan fits me?" (lower case), as [`recommend`] reads it for the customer's own lines.
pub(super) fn asks_what_fits_me(lower: &str) -> bool {
    RECOMMEND.is_match(lower) && FITS_ME.is_match(lower)
}

/// One person or device in the description.
#[derive(Debug, Clone, PartialEq)]
struct User {
    label: String,
    data_gb: f64,
    calls: bool,
}

pub(super) fn recommend(q: &Question<'_>, context: &super::Context) -> Option<ComputedAnswer> {
    if !q.has(&RECOMMEND) {
        return None;
    }
    let mut users = described_users(q);
    let mut own = false;
    if users.is_empty() {
        if context.own_usage.is_empty() || !q.has(&FITS_ME) {
            return None;
        }
        users = context
            .own_usage
            .iter()
            .map(|line| User { label: line.label.clone(), data_gb: line.data_gb, calls: line.calls })
            .collect();
        own = true;
    }
    if users.len() > MAX_USERS {
        let text = format!(
            "For more than {MAX_USERS} lines I cannot work out the cheapest set of plans here; one of our agents can put a quote together for you."
        );
        return Some(ComputedAnswer::new(text, q.catalogue.plans.iter().map(|plan| plan.source.clone())));
    }
    let five_g = q.has(&WANTS_5G) && !q.has(&NO_5G_NEEDED);
    let catalogue = q.catalogue;
    let best = cheapest(&catalogue.plans, &users, five_g, None)?;
    let mut sentences = Vec::new();
    let needs = needs_text(&users, five_g);
    if own {
        let lines: Vec<String> =
            users.iter().map(|user| format!("{} used {}", user.label, format_gb(user.data_gb))).collect();
        sentences.push(format!("From your lines' data use this cycle ({}):", lines.join(", ")));
    }
    if users.len() == 1 {
        let user = &users[0];
        let mut options: Vec<Assignment<'_>> = catalogue
            .plans
            .iter()
            .filter_map(|plan| group_cost(plan, &users, &[0], five_g).map(|group| Assignment { groups: vec![group] }))
            .collect();
        options.sort_by(|a, b| a.key().partial_cmp(&b.key()).unwrap_or(std::cmp::Ordering::Equal));
        sentences.push(format!(
            "For about {} a month{needs}, the cheapest is the {}: {} a month.",
            format_gb(user.data_gb),
            best.groups[0].plan.name,
            best.groups[0].arithmetic(q)
        ));
        let others: Vec<String> = options
            .iter()
            .filter(|option| option.groups[0].plan.id != best.groups[0].plan.id)
            .take(2)
            .map(|option| format!("{}: {}", option.groups[0].plan.name, option.groups[0].arithmetic(q)))
            .collect();
        if !others.is_empty() {
            sentences.push(format!("Compare {}.", others.join("; ")));
        }
    } else {
        let everyone: Vec<String> = describe_users(&users);
        sentences.push(format!("For {}{needs}, the cheapest is:", everyone.join(", ")));
        sentences.push(format!("{}.", best.describe(q)));
        sentences.push(format!("Total: {} a month.", q.money(best.total())));
        let separate = cheapest(&catalogue.plans, &users, five_g, Some(Kind::Separate));
        let shared = cheapest(&catalogue.plans, &users, five_g, Some(Kind::SharedOnly));
        let mut others = Vec::new();
        for (what, option) in [("Separate lines", separate), ("Shared plans only", shared)] {
            if let Some(option) = option
                && (option.total() - best.total()).abs() > 0.005
            {
                // A description whose own arithmetic ends in the total is not given it again.
                let (described, total) = (option.describe(q), q.money(option.total()));
                let total = if described.ends_with(&total) { String::new() } else { format!(" = {total}") };
                others.push(format!("{what}: {described}{total}"));
            }
        }
        if !others.is_empty() {
            sentences.push(format!("Compare {}.", others.join(". ")));
        }
    }
    let mut sources: Vec<String> = best.groups.iter().map(|group| group.plan.source.clone()).collect();
    sources.push(catalogue.refuel.source.clone());
    Some(ComputedAnswer::new(sentences.join(" "), sources))
}

static WANTS_5G: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(need|needs|want|wants|must have|require\w*|with|has to have|have to have|like|love|prefer|get|cheapest)( the| a)? 5g\b|\b5g (is )?(a must|required|important|essential|needed|please)\b|\b5g plan\b").unwrap()
});
static NO_5G_NEEDED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b5g (is )?not (needed|required|necessary|important)|\b(don'?t|do not|doesn'?t|does not) (need|care about|want|require) 5g|\bno need for 5g|\bwithout 5g|\bno 5g").unwrap()
});

fn needs_text(users: &[User], five_g: bool) -> String {
    let mut needs = Vec::new();
    if users.iter().all(|user| user.calls) {
        needs.push(if users.len() == 1 { "with calls" } else { "all with calls" });
    } else if users.iter().all(|user| !user.calls) {
        needs.push("without calls");
    }
    if five_g {
        needs.push("with 5G");
    }
    if needs.is_empty() { String::new() } else { format!(" ({})", needs.join(", ")) }
}

/// "3 × 2 GB with calls", "1 × 30 GB".
fn describe_users(users: &[User]) -> Vec<String> {
    let mut groups: Vec<(usize, &User)> = Vec::new();
    for user in users {
        match groups.iter_mut().find(|(_, other)| other.data_gb == user.data_gb && other.calls == user.calls) {
            Some((count, _)) => *count += 1,
            None => groups.push((1, user)),
        }
    }
    groups
        .into_iter()
        .map(|(count, user)| {
            let what = if user.calls { "" } else { ", no calls" };
            if count == 1 {
                format!("one {} user{what}", format_gb(user.data_gb))
            } else {
                format!("{count} users of {} each{what}", format_gb(user.data_gb))
            }
        })
        .collect()
}

/// Which plans an option may use.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Separate,
    SharedOnly,
}

/// Some users on one plan.
#[derive(Debug, Clone)]
struct Group<'c> {
    plan: &'c PlanFacts,
    users: Vec<usize>,
    data_gb: f64,
    extra_gb: f64,
    cost: f64,
}

impl Group<'_> {
    /// "$65 + 5 GB × $2 = $75".
    fn arithmetic(&self, q: &Question<'_>) -> String {
        if self.extra_gb > 0.0 {
            format!(
                "{} + {} extra × {} = {}",
                q.money(self.plan.price),
                format_gb(self.extra_gb),
                q.money(self.plan.refuel_price_per_gb),
                q.money(self.cost)
            )
        } else {
            format!("{} (the {} covers it)", q.money(self.cost), format_gb(self.plan.data_gb))
        }
    }
}

#[derive(Debug, Clone)]
struct Assignment<'c> {
    groups: Vec<Group<'c>>,
}

impl Assignment<'_> {
    fn total(&self) -> f64 {
        self.groups.iter().map(|group| group.cost).sum()
    }

    /// Cheapest first; then the fewest GB bought as refuels, then the fewest plans.
    fn key(&self) -> (i64, i64, usize) {
        let extra: f64 = self.groups.iter().map(|group| group.extra_gb).sum();
        ((self.total() * 100.0).round() as i64, (extra * 100.0).round() as i64, self.groups.len())
    }

    fn describe(&self, q: &Question<'_>) -> String {
        let mut parts: Vec<String> = Vec::new();
        // Identical separate lines read as one item: "2 × Basic Plan (4 GB each): 2 × $40 = $80".
        let mut done = vec![false; self.groups.len()];
        for (i, group) in self.groups.iter().enumerate() {
            if done[i] {
                continue;
            }
            if group.plan.max_lines > 1 {
                done[i] = true;
                let pool = format!(
                    "{} lines sharing {} of the {} pool",
                    group.users.len(),
                    format_gb(group.data_gb),
                    format_gb(group.plan.data_gb)
                );
                parts.push(format!("{} for {pool}: {}", group.plan.name, group.arithmetic(q)));
                continue;
            }
            let same: Vec<usize> = (i..self.groups.len())
                .filter(|&j| {
                    !done[j]
                        && self.groups[j].plan.id == group.plan.id
                        && self.groups[j].plan.max_lines == 1
                        && (self.groups[j].data_gb - group.data_gb).abs() < 1e-9
                })
                .collect();
            for &j in &same {
                done[j] = true;
            }
            if same.len() == 1 {
                parts.push(format!(
                    "{} for the {} user: {}",
                    group.plan.name,
                    format_gb(group.data_gb),
                    group.arithmetic(q)
                ));
            } else {
                parts.push(format!(
                    "{} × {} for the {} users: {} × {} = {}",
                    same.len(),
                    group.plan.name,
                    format_gb(group.data_gb),
                    same.len(),
                    q.money(group.cost),
                    q.money(group.cost * same.len() as f64)
                ));
            }
        }
        parts.join("; ")
    }
}

/// The plan's cost for these users together, when it can carry them.
fn group_cost<'c>(plan: &'c PlanFacts, users: &[User], members: &[usize], five_g: bool) -> Option<Group<'c>> {
    if members.is_empty() || members.len() > plan.max_lines as usize || (five_g && !plan.five_g) {
        return None;
    }
    if members.iter().any(|&i| users[i].calls && !plan.calls) {
        return None;
    }
    let data_gb: f64 = members.iter().map(|&i| users[i].data_gb).sum();
    let extra_gb = (data_gb - plan.data_gb).max(0.0);
    let cost = plan.price + extra_gb * plan.refuel_price_per_gb;
    Some(Group { plan, users: members.to_vec(), data_gb, extra_gb, cost })
}

/// The cheapest assignment of every user to plans, over every grouping (users ≤ 8).
fn cheapest<'c>(plans: &'c [PlanFacts], users: &[User], five_g: bool, kind: Option<Kind>) -> Option<Assignment<'c>> {
    let n = users.len();
    if n == 0 || n > MAX_USERS {
        return None;
    }
    let allowed: Vec<&PlanFacts> = plans
        .iter()
        .filter(|plan| match kind {
            Some(Kind::Separate) => plan.max_lines == 1,
            Some(Kind::SharedOnly) => plan.max_lines > 1,
            None => true,
        })
        .collect();
    let full = (1usize << n) - 1;
    let mut best: Vec<Option<Assignment<'_>>> = vec![None; full + 1];
    best[0] = Some(Assignment { groups: Vec::new() });
    for mask in 1..=full {
        let lowest = mask.trailing_zeros() as usize;
        let rest = mask & !(1 << lowest);
        // Every subset of the other users joins the lowest one in a group.
        let mut sub = rest;
        loop {
            let group_mask = sub | (1 << lowest);
            let members: Vec<usize> = (0..n).filter(|i| group_mask & (1 << i) != 0).collect();
            if let Some(before) = best[mask & !group_mask].clone() {
                for plan in &allowed {
                    if let Some(group) = group_cost(plan, users, &members, five_g) {
                        let mut candidate = before.clone();
                        candidate.groups.push(group);
                        if best[mask].as_ref().is_none_or(|current| candidate.key() < current.key()) {
                            best[mask] = Some(candidate);
                        }
                    }
                }
            }
            if sub == 0 {
                break;
            }
            sub = (sub - 1) & rest;
        }
    }
    best[full].take()
}

static BREAK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r" and |,|;|\.|\(|\)|:| while | but | plus | whereas |/").unwrap());
static COUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d+) (?:of us|of them|people|ppl|persons|\w+ users|users|lines|phones|kids|children|members|adults|teens|teenagers|devices|sims|family members)\b").unwrap()
});
static TOTAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:family|household|group|team) of (\d+)\b|\bwe(?:'re| are) (\d+)\b|\b(\d+) (?:of us|people|ppl|persons|lines|members|phones|smartphones|sims|users)\b").unwrap()
});
static EVERYONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(everyone|everybody|all of us|each of us|we all|all \d+|each person|every one)\b").unwrap()
});
static PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(me and my \w+|my \w+ and (i|me)|we both|both of us|the 2 of us|2 of us)\b").unwrap()
});
static EACH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(each|both|apiece)\b").unwrap());
static BOTH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bboth\b").unwrap());
static NO_CALLS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(no|without|zero) (calls|calling|voice|phone calls|texts)\b|\b(doesn'?t|don'?t|does not|do not|won'?t) (need|make|use) (any )?(calls|calling|voice|phone calls)\b|\bcalls? (not|aren'?t|isn'?t) (needed|required|necessary)\b|\bdata[- ]only\b|\bjust (for )?data\b|\bonly (for )?data\b").unwrap()
});
static WITH_CALLS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b(calls|calling|voice|talk|texts)\b").unwrap());
static DEVICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(smart ?watch\w*|watch|tablet|ipad|tracker|gps|router|laptop|camera|sensor|dongle|modem|hotspot device|kindle|e-?reader|iot|gadget|car)\b").unwrap()
});
static ALL_CALLS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(all|both|everyone|everybody|we all|each|all of us|they all)( of us| of them)? (need|needs|want|wants|make|makes|use|uses)( to make)? (calls|to call|calling|voice|talk)\b").unwrap()
});

/// The people and devices a message describes, one per line.
fn described_users(q: &Question<'_>) -> Vec<User> {
    let text = q.text.as_str();
    let amounts: Vec<DataMention> = q
        .data
        .iter()
        .copied()
        .filter(|amount| {
            let before = &text[..amount.start];
            let after = &text[amount.end..];
            let said = &text[amount.start..amount.end];
            !["more", "extra", "additional"].iter().any(|word| said.contains(word))
                && !NOT_USAGE.is_match(before)
                && !NOT_USAGE.is_match(after)
                && (USAGE_BEFORE.is_match(before) || USAGE_AFTER.is_match(after))
        })
        .collect();
    if amounts.is_empty() {
        return Vec::new();
    }
    let total = TOTAL
        .captures(text)
        .and_then(|caps| (1..=3).find_map(|i| caps.get(i)).and_then(|m| m.as_str().parse::<usize>().ok()));
    let all_call = ALL_CALLS.is_match(text);
    let mut groups: Vec<(usize, bool, User)> = Vec::new();
    for (i, amount) in amounts.iter().enumerate() {
        let previous_end = if i == 0 { 0 } else { amounts[i - 1].end };
        let next_start = amounts.get(i + 1).map_or(text.len(), |next| next.start);
        let before_all = &text[previous_end..amount.start];
        let before = after_last_break(before_all);
        let after_all = &text[amount.end..next_start];
        let after = if i + 1 < amounts.len() { before_last_break(after_all) } else { after_all };
        let scope = format!("{before} {after}");
        let everyone = EVERYONE.is_match(before);
        let count = COUNT
            .captures(before)
            .and_then(|caps| caps[1].parse::<usize>().ok())
            .or_else(|| BOTH.is_match(before).then_some(2))
            .or_else(|| (PAIR.is_match(before_all) && EACH.is_match(&scope)).then_some(2))
            .or_else(|| everyone.then_some(total).flatten())
            .unwrap_or(1);
        let single = amounts.len() == 1;
        let negated = NO_CALLS.is_match(&scope) || (single && NO_CALLS.is_match(text));
        let device = DEVICE.is_match(&scope) || (single && DEVICE.is_match(text));
        let positive = WITH_CALLS.is_match(&scope) && !negated;
        let calls = if negated {
            false
        } else if device {
            positive || (all_call && !single)
        } else {
            true
        };
        let label = format!("{} user", format_gb(amount.gb));
        groups.push((count.clamp(1, MAX_USERS + 1), everyone, User { label, data_gb: amount.gb, calls }));
    }
    // "We are 4: 3 of us use 2 GB and my son 30 GB" adds up; "family of 5, everyone 4 GB" is 5.
    if let Some(total) = total {
        let counted: usize = groups.iter().map(|(count, _, _)| count).sum();
        if counted < total && groups.len() == 1 {
            groups[0].0 = total;
        }
    }
    let mut users = Vec::new();
    for (count, _, user) in groups {
        for _ in 0..count {
            users.push(user.clone());
            if users.len() > MAX_USERS {
                return users;
            }
        }
    }
    users
}

/// The text after the last clause break ("each, and my son uses about " → " my son uses about ").
fn after_last_break(text: &str) -> &str {
    match BREAK.find_iter(text).last() {
        Some(found) => &text[found.end()..],
        None => text,
    }
}

/// The text before the last clause break (what still belongs to the previous amount).
fn before_last_break(text: &str) -> &str {
    match BREAK.find_iter(text).last() {
        Some(found) => &text[..found.start()],
        None => text,
    }
}
