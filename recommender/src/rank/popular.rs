//! Popularity generators: the site's popular items (cold start), the page category's popular items,
//! the member's interests (popular items of their favourite categories and brands, weighted by each
//! interest's share), and trending items (ranked by the processor's background refresh, see
//! `tailor_core::trending`). All read a ranked list from the store; none needs the session.

use super::{sort_candidates, Because, Candidate, Tally};

/// A ranked list as candidates, each because of `because`.
pub fn from_list(list: &[(String, f64)], because: &Because) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = list
        .iter()
        .filter(|(_, s)| *s > 0.0)
        .map(|(item, score)| Candidate {
            item_id: item.clone(),
            score: *score,
            because: because.clone(),
        })
        .collect();
    sort_candidates(&mut out);
    out
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
pub fn interests(interests: &[Interest]) -> Vec<Candidate> {
    let mut tally = Tally::with_capacity(interests.iter().map(|i| i.popular.len()).sum());
    for i in interests {
        let Some(max) = i.popular.iter().map(|(_, s)| *s).reduce(f64::max) else {
            continue;
        };
        if max <= 0.0 || i.share <= 0.0 {
            continue;
        }
        for (item, s) in i.popular.iter() {
            tally.add(item, i.share * s / max, &i.because);
        }
    }
    tally.into_candidates(Because::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(items: &[(&str, f64)]) -> Vec<(String, f64)> {
        items.iter().map(|(i, c)| (i.to_string(), *c)).collect()
    }

    #[test]
    fn a_list_becomes_candidates_best_first_without_zeros() {
        let out = from_list(&l(&[("b", 1.0), ("a", 3.0), ("z", 0.0)]), &Because::Source);
        let ids: Vec<&str> = out.iter().map(|c| c.item_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn interests_weigh_each_list_by_its_share() {
        let out = interests(&[
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
        ]);
        let ids: Vec<&str> = out.iter().map(|c| c.item_id.as_str()).collect();
        // t1 0.8, t2 0.4 + 0.2 = 0.6, b1 0.2.
        assert_eq!(ids, ["t1", "t2", "b1"]);
        assert_eq!(out[1].because, Because::Category("tents".into()));
        assert_eq!(out[2].because, Because::Brand("acme".into()));
    }
}
