//! Popularity generators: the site's popular items (cold start), the page category's popular items,
//! the member's interests (popular items of their favourite categories and brands, weighted by each
//! interest's share), and trending items (ranked by the processor's background refresh, see
//! `tailor_core::trending`). All read a ranked list from the store; none needs the session.

use super::{Because, Candidate, Cause, Tally};

/// A ranked list as candidates, each because of `because`.
pub fn from_list<'a>(list: &'a [(String, f64)], because: Cause<'a>) -> Vec<Candidate<'a>> {
    list.iter()
        .filter(|(_, s)| *s > 0.0)
        .map(|(item, score)| Candidate {
            item_id: item,
            score: *score,
            because,
        })
        .collect()
}

/// One interest (a category or brand with its share of the member's interest) and its popular items.
#[derive(Debug, Clone, PartialEq)]
pub struct Interest {
    pub because: Because,
    pub share: f64,
    pub popular: crate::lists::SharedList,
}

/// Popular items of the member's interests: each list is normalised by its best item and weighted
/// by the interest's share, so a strong interest's second item can beat a weak interest's first.
/// In no particular order.
pub fn interests(interests: &[Interest]) -> Vec<Candidate<'_>> {
    let mut tally = Tally::with_capacity(interests.iter().map(|i| i.popular.len()).sum());
    for i in interests {
        let Some(max) = i.popular.iter().map(|(_, s)| *s).reduce(f64::max) else {
            continue;
        };
        if max <= 0.0 || i.share <= 0.0 {
            continue;
        }
        for (item, s) in i.popular.iter() {
            tally.add(item, i.share * s / max, i.because.cause());
        }
    }
    tally.into_candidates(|cause| cause)
}

#[cfg(test)]
mod tests {
    use super::super::ranked;
    use super::*;

    fn l(items: &[(&str, f64)]) -> Vec<(String, f64)> {
        items.iter().map(|(i, c)| (i.to_string(), *c)).collect()
    }

    #[test]
    fn a_list_becomes_candidates_best_first_without_zeros() {
        let list = l(&[("b", 1.0), ("a", 3.0), ("z", 0.0)]);
        let out = ranked(from_list(&list, Cause::Source));
        let ids: Vec<&str> = out.iter().map(|c| c.item_id).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn interests_weigh_each_list_by_its_share() {
        let wanted = [
            Interest {
                because: Because::Category("tents".into()),
                share: 0.8,
                popular: l(&[("t1", 100.0), ("t2", 50.0)]).into(),
            },
            Interest {
                because: Because::Brand("acme".into()),
                share: 0.2,
                popular: l(&[("b1", 7.0), ("t2", 7.0)]).into(),
            },
        ];
        let out = ranked(interests(&wanted));
        let ids: Vec<&str> = out.iter().map(|c| c.item_id).collect();
        // t1 0.8, t2 0.4 + 0.2 = 0.6, b1 0.2.
        assert_eq!(ids, ["t1", "t2", "b1"]);
        assert_eq!(out[1].because, Cause::Category("tents"));
        assert_eq!(out[2].because, Cause::Brand("acme"));
    }
}
