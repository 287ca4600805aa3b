//! Dial by name: names spelled on the telephone keypad (ITU E.161: 2 = ABC ... 7 = PQRS,
//! 9 = WXYZ), matched against the users directory.

use parley_store::UserRecord;

use super::config::{NameField, is_number};

/// Keys a caller types for a name search (the first three letters, or fewer then `#`).
pub(crate) const NAME_KEYS: usize = 3;

/// A user a search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) extension: String,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
}

impl Entry {
    /// "First Last" as it is spoken.
    pub(crate) fn spoken(&self) -> String {
        format!("{} {}", self.first_name.trim(), self.last_name.trim())
            .trim()
            .to_string()
    }
}

/// The key of a letter (accented Latin letters count as their base letter); `None` for
/// anything else (spaces, apostrophes, hyphens, digits are skipped when spelling).
pub(crate) fn key_of(c: char) -> Option<char> {
    let base = match c {
        'à'..='å' | 'À'..='Å' => 'a',
        'ç' | 'Ç' => 'c',
        'è'..='ë' | 'È'..='Ë' => 'e',
        'ì'..='ï' | 'Ì'..='Ï' => 'i',
        'ñ' | 'Ñ' => 'n',
        'ò'..='ö' | 'ø' | 'Ò'..='Ö' | 'Ø' => 'o',
        'ù'..='ü' | 'Ù'..='Ü' => 'u',
        'ý' | 'ÿ' | 'Ý' => 'y',
        'ß' => 's',
        c if c.is_ascii_alphabetic() => c.to_ascii_lowercase(),
        _ => return None,
    };
    Some(match base {
        'a'..='c' => '2',
        'd'..='f' => '3',
        'g'..='i' => '4',
        'j'..='l' => '5',
        'm'..='o' => '6',
        'p'..='s' => '7',
        't'..='v' => '8',
        _ => '9',
    })
}

/// The keys that spell `name`.
pub(crate) fn spell(name: &str) -> String {
    name.chars().filter_map(key_of).collect()
}

/// Whether `name` matches the typed `keys`: its spelling starts with them, or (a name shorter
/// than the keys, "Li" for "54#") it is all of them.
fn matches(name: &str, keys: &str) -> bool {
    let spelled = spell(name);
    !spelled.is_empty() && (spelled.starts_with(keys) || keys.starts_with(&spelled))
}

/// Users whose `field` name matches `keys`, sorted by last name, first name, extension. Only
/// users reachable by number (a numeric extension) are listed.
pub(crate) fn search(users: &[UserRecord], field: NameField, keys: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = users
        .iter()
        .filter(|u| is_number(&u.user))
        .filter(|u| {
            let name = match field {
                NameField::Last => &u.last_name,
                NameField::First => &u.first_name,
            };
            matches(name, keys)
        })
        .map(|u| Entry {
            extension: u.user.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
        })
        .collect();
    out.sort_by(|a, b| {
        (
            a.last_name.to_lowercase(),
            a.first_name.to_lowercase(),
            &a.extension,
        )
            .cmp(&(
                b.last_name.to_lowercase(),
                b.first_name.to_lowercase(),
                &b.extension,
            ))
    });
    out
}

/// Whether `keys` is a well-formed search: 1 to [`NAME_KEYS`] of the letter keys 2-9.
pub(crate) fn valid_keys(keys: &str) -> bool {
    (1..=NAME_KEYS).contains(&keys.len()) && keys.bytes().all(|b| (b'2'..=b'9').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn user(ext: &str, first: &str, last: &str) -> UserRecord {
        UserRecord {
            user: ext.into(),
            first_name: first.into(),
            last_name: last.into(),
            aliases: Vec::new(),
            email: None,
            pin_hash: None,
            realm: "parley.local".into(),
            ha1_md5: None,
            ha1_sha256: None,
        }
    }

    #[test]
    fn keypad_letters() {
        assert_eq!(spell("Smith"), "76484");
        assert_eq!(spell("O'Brien-Quinn"), "62743678466");
        assert_eq!(spell("Zoë"), "963");
        assert_eq!(spell("Müller"), "685537");
        let all: String = ('a'..='z').filter_map(key_of).collect();
        assert_eq!(all, "22233344455566677778889999");
        assert_eq!(key_of('1'), None);
        assert_eq!(key_of(' '), None);
    }

    #[test]
    fn searches_by_last_or_first_name() {
        let users = vec![
            user("201", "John", "Smith"),
            user("202", "Jane", "Smythe"),
            user("203", "Peter", "Jones"),
            user("alice", "Alice", "Smith"),
            user("204", "Mei", "Li"),
            user("205", "", ""),
        ];
        let exts = |field, keys| -> Vec<String> {
            search(&users, field, keys)
                .into_iter()
                .map(|e| e.extension)
                .collect()
        };
        assert_eq!(exts(NameField::Last, "764"), vec!["201"], "Smi");
        assert_eq!(exts(NameField::Last, "769"), vec!["202"], "Smy");
        assert_eq!(exts(NameField::Last, "76"), vec!["201", "202"], "Sm#");
        assert_eq!(exts(NameField::Last, "566"), vec!["203"]);
        assert_eq!(exts(NameField::Last, "54"), vec!["204"], "Li#");
        assert_eq!(
            exts(NameField::Last, "542"),
            vec!["204"],
            "short names match"
        );
        assert!(exts(NameField::Last, "222").is_empty());
        assert_eq!(exts(NameField::First, "526"), vec!["202"], "Jan");
        assert_eq!(
            exts(NameField::First, "5"),
            vec!["201", "202"],
            "J#: by last name"
        );
        assert_eq!(exts(NameField::First, "738"), vec!["203"]);
        assert_eq!(
            search(&users, NameField::Last, "764")[0].spoken(),
            "John Smith"
        );
    }

    #[test]
    fn key_validation() {
        assert!(valid_keys("764"));
        assert!(valid_keys("7"));
        assert!(!valid_keys(""));
        assert!(!valid_keys("7666"));
        assert!(!valid_keys("701"));
        assert!(!valid_keys("7*6"));
    }
}
