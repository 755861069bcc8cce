//! Reminders: the items of the session in progress, most recent first. Shoppers return to what they
//! just looked at (on shop traffic about three in ten next clicks are an item already viewed in the
//! session, one in six the very last one), so a blend that never re-shows them misses those clicks.
//! The score is the sum over the item's clicks of 1 / (clicks back + 1): the last click scores 1,
//! an item clicked twice scores more than one clicked once at the same distance.

use super::{Candidate, Cause};
use tailor_core::hash::FastMap;

/// Reminder candidates for a session (clicks, oldest first), in no particular order.
pub fn generate(session: &[String]) -> Vec<Candidate<'_>> {
    let mut scores: FastMap<&str, f64> = FastMap::default();
    for (back, item) in session.iter().rev().enumerate() {
        *scores.entry(item).or_default() += 1.0 / (back as f64 + 1.0);
    }
    scores
        .into_iter()
        .map(|(item, score)| Candidate {
            item_id: item,
            score,
            because: Cause::Source,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::ranked;
    use super::*;

    #[test]
    fn the_latest_and_the_often_clicked_come_first() {
        let s: Vec<String> = ["a", "b", "a", "c"].iter().map(|i| i.to_string()).collect();
        let out = ranked(generate(&s));
        let got: Vec<(&str, f64)> = out.iter().map(|c| (c.item_id, c.score)).collect();
        // c 1; a 1/2 + 1/4; b 1/3.
        assert_eq!(got, [("c", 1.0), ("a", 0.75), ("b", 1.0 / 3.0)]);
        assert!(generate(&[]).is_empty());
    }
}
