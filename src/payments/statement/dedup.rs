//! Dedup keys: the importer stores each entry's key and skips keys it has seen, so the
//! same payment read twice (the same file again, two statements that overlap, a camt.054
//! and the camt.053 that reports it again) is counted once, and two payments never
//! collapse into one.
//!
//! - With a bank reference: `ref:<account>:<bank_reference>` for a credit,
//!   `ref-reversal:<account>:<bank_reference>` for a reversal (a bank may repeat the
//!   original payment's reference on the reversal that undoes it, and both must count).
//! - Without: `hash:<sha256 hex>` of the fields that identify the payment (account,
//!   direction, booking date, amount in cents, end-to-end id, structured reference,
//!   payment reason, payer name), each written with its length so that no two different
//!   lists of fields give the same text, and a present empty field differs from an absent
//!   one.
//! - Either way, the n-th entry of a file with the same key (n ≥ 2) gets `#n` appended
//!   (before hashing, for `hash:`). Two identical payments in one day's statement (the
//!   same customer paying twice) stay two; a later statement that overlaps lists them in
//!   the same order and gives them the same keys again. A bank reference should be unique,
//!   but if a bank repeats one, the second payment is kept rather than dropped.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::{EntryDirection, StatementEntry};
use crate::secrets::hex;

#[cfg(test)]
pub(super) fn assign_keys(entries: &mut [StatementEntry]) {
    let mut keys = KeyAssigner::default();
    entries.iter_mut().for_each(|entry| keys.assign(entry));
}

/// Gives the entries of one file their keys, in file order: it counts each key's
/// occurrences so far, and keeps only keys (a `hash:` one for a long identity), never the
/// entries, so that a file of any size is keyed one entry at a time.
#[derive(Default)]
pub(super) struct KeyAssigner {
    seen: HashMap<String, usize>,
}

impl KeyAssigner {
    pub(super) fn assign(&mut self, entry: &mut StatementEntry) {
        let (base, identity) = match &entry.bank_reference {
            Some(reference) => {
                let prefix = match entry.direction {
                    EntryDirection::Credit => "ref",
                    EntryDirection::Reversal => "ref-reversal",
                };
                (format!("{prefix}:{}:{reference}", entry.account), None)
            }
            None => {
                // The first occurrence's key stands for the identity: it is the key
                // anyway, and short.
                let identity = identity(entry);
                (hashed(&identity), Some(identity))
            }
        };
        let occurrence = match self.seen.get_mut(&base) {
            Some(count) => {
                *count += 1;
                *count
            }
            None => {
                self.seen.insert(base.clone(), 1);
                1
            }
        };
        entry.dedup_key = match (occurrence, identity) {
            (1, _) => base,
            (n, None) => format!("{base}#{n}"),
            (n, Some(identity)) => hashed(&format!("{identity}#{n}")),
        };
    }
}

fn hashed(identity: &str) -> String {
    format!("hash:{}", hex(&Sha256::digest(identity.as_bytes())))
}

/// The key of an entry whose `ref:` key was already taken by a payment of another
/// amount or booking date: the same key, with this entry's booking date and amount.
pub fn reused_reference_key(entry: &StatementEntry) -> String {
    format!(
        "{}~{}:{}",
        entry.dedup_key,
        entry.booking_date.format("%Y-%m-%d"),
        entry.amount.cents()
    )
}

/// The identifying fields, each as `<length>:<text>` or `-` when absent.
fn identity(entry: &StatementEntry) -> String {
    let booking_date = entry.booking_date.format("%Y-%m-%d").to_string();
    let cents = entry.amount.cents().to_string();
    let fields = [
        Some(entry.account.as_str()),
        Some(entry.direction.as_str()),
        Some(booking_date.as_str()),
        Some(cents.as_str()),
        entry.end_to_end_id.as_deref(),
        entry.structured_reference.as_deref(),
        Some(entry.remittance_text.as_str()),
        entry.payer_name.as_deref(),
    ];
    fields
        .iter()
        .map(|field| match field {
            Some(text) => format!("{}:{text}", text.len()),
            None => "-".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Money;
    use chrono::NaiveDate;

    fn entry() -> StatementEntry {
        StatementEntry {
            account: "IT60X0542811101000000123456".into(),
            statement: 0,
            direction: EntryDirection::Credit,
            amount: Money::from_cents(12200),
            booking_date: NaiveDate::from_ymd_opt(2025, 3, 3).unwrap(),
            value_date: None,
            bank_reference: None,
            end_to_end_id: None,
            structured_reference: None,
            structured_is_scor: false,
            remittance_text: "RF18539007547034".into(),
            payer_name: Some("Mario Rossi".into()),
            bank_entry: None,
            dedup_key: String::new(),
            location: "line 2".into(),
        }
    }

    fn keys(entries: Vec<StatementEntry>) -> Vec<String> {
        let mut entries = entries;
        assign_keys(&mut entries);
        entries.into_iter().map(|e| e.dedup_key).collect()
    }

    #[test]
    fn references_make_readable_keys_and_reversals_differ() {
        let credit = StatementEntry {
            bank_reference: Some("0001234".into()),
            ..entry()
        };
        let reversal = StatementEntry {
            direction: EntryDirection::Reversal,
            ..credit.clone()
        };
        assert_eq!(
            keys(vec![credit.clone(), reversal, credit]),
            [
                "ref:IT60X0542811101000000123456:0001234",
                "ref-reversal:IT60X0542811101000000123456:0001234",
                "ref:IT60X0542811101000000123456:0001234#2",
            ]
        );
    }

    #[test]
    fn a_reused_reference_gets_a_key_of_its_own_amount_and_date() {
        let mut entries = vec![StatementEntry {
            bank_reference: Some("0001234".into()),
            ..entry()
        }];
        assign_keys(&mut entries);
        assert_eq!(
            reused_reference_key(&entries[0]),
            "ref:IT60X0542811101000000123456:0001234~2025-03-03:12200"
        );
    }

    #[test]
    fn identical_payments_stay_apart_and_keys_are_stable() {
        let first = keys(vec![entry(), entry()]);
        assert_ne!(first[0], first[1]);
        assert!(first[0].starts_with("hash:") && first[0].len() == 5 + 64);
        assert_eq!(
            keys(vec![entry()]),
            first[..1],
            "a statement with only one of them"
        );
        assert_eq!(keys(vec![entry(), entry(), entry()])[..2], first[..]);
    }

    #[test]
    fn every_identifying_field_changes_the_key() {
        let base = keys(vec![entry()]).remove(0);
        let changed = [
            StatementEntry {
                account: "000012345678".into(),
                ..entry()
            },
            StatementEntry {
                direction: EntryDirection::Reversal,
                ..entry()
            },
            StatementEntry {
                booking_date: NaiveDate::from_ymd_opt(2025, 3, 4).unwrap(),
                ..entry()
            },
            StatementEntry {
                amount: Money::from_cents(12201),
                ..entry()
            },
            StatementEntry {
                end_to_end_id: Some("E2E".into()),
                ..entry()
            },
            StatementEntry {
                structured_reference: Some("RF18539007547034".into()),
                ..entry()
            },
            StatementEntry {
                remittance_text: "RF18539007547034 ".into(),
                ..entry()
            },
            StatementEntry {
                payer_name: None,
                ..entry()
            },
            StatementEntry {
                payer_name: Some(String::new()),
                ..entry()
            },
        ];
        for entry in changed {
            assert_ne!(keys(vec![entry.clone()]).remove(0), base, "{entry:?}");
        }
        // Fields that do not identify the payment leave the key alone.
        let same = StatementEntry {
            value_date: NaiveDate::from_ymd_opt(2025, 3, 5),
            location: "entry 9 (line 300)".into(),
            structured_is_scor: true,
            ..entry()
        };
        assert_eq!(keys(vec![same]).remove(0), base);
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let a = StatementEntry {
            remittance_text: "a,1:b".into(),
            payer_name: Some("c".into()),
            ..entry()
        };
        let b = StatementEntry {
            remittance_text: "a".into(),
            payer_name: Some("b,1:c".into()),
            ..entry()
        };
        assert_ne!(keys(vec![a]), keys(vec![b]));
    }
}
