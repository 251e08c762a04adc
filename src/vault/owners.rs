//! Owners from tags: the tag named by `OWNER_TAG` on an object names who owns it, ahead of the
//! rules' `[[owners]]` and `OWNER_EMAILS`.
//!
//! Anyone who may edit a secret's tags could otherwise have kv-notify, a trusted sender, mail
//! any address. So a tag's address is used only in a domain the configuration already mails
//! (`MAIL_FROM`, `OWNER_EMAILS`, `SECURITY_EMAILS`, the rules) or one listed in
//! `OWNER_TAG_DOMAINS`; the others are ignored, with a warning and a line in the health notice.
//! An object without an owner tag takes its vault's.

use lettre::Address;
use lettre::message::Mailbox;
use std::collections::{BTreeMap, BTreeSet};

/// Which tag names owners, and the domains its addresses may be in.
#[derive(Debug, Clone)]
pub struct OwnerTag {
    /// The tag's name, matched in any case (as Azure does).
    name: String,
    /// Lower-case domains.
    domains: BTreeSet<String>,
}

/// What an object's owner tag said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagOwners {
    /// The addresses to mail.
    pub owners: Vec<Mailbox>,
    /// The entries not used: not an address, or in a domain the configuration does not mail.
    pub ignored: Vec<String>,
}

impl OwnerTag {
    /// The tag `name`, whose addresses may be in the domains of `known` or in `domains`.
    pub fn new<'a>(
        name: &str,
        known: impl IntoIterator<Item = &'a Mailbox>,
        domains: &[String],
    ) -> Self {
        let domains = known
            .into_iter()
            .map(|mailbox| mailbox.email.domain().to_lowercase())
            .chain(domains.iter().map(|d| d.trim().to_lowercase()))
            .filter(|d| !d.is_empty())
            .collect();
        Self {
            name: name.to_owned(),
            domains,
        }
    }

    /// The owners `tags` name; `None` when there is no such tag (or it names nobody).
    pub fn owners(&self, tags: &BTreeMap<String, String>) -> Option<TagOwners> {
        let (_, value) = tags
            .iter()
            .find(|(name, _)| name.trim().eq_ignore_ascii_case(&self.name))?;
        let mut found = TagOwners::default();
        for entry in value
            .split([',', ';'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            match entry.parse::<Address>() {
                Ok(address) if self.domains.contains(&address.domain().to_lowercase()) => {
                    let mailbox = Mailbox::new(None, address);
                    if !found.owners.contains(&mailbox) {
                        found.owners.push(mailbox);
                    }
                }
                _ => found.ignored.push(entry.chars().take(100).collect()),
            }
        }
        (!found.owners.is_empty() || !found.ignored.is_empty()).then_some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn tag() -> OwnerTag {
        let known: Mailbox = "alerts@contoso.com".parse().expect("mailbox");
        OwnerTag::new("owner", [&known], &["Fabrikam.com".to_owned()])
    }

    #[test]
    fn addresses_in_known_domains_are_owners_and_others_are_ignored() {
        let found = tag()
            .owners(&tags(&[(
                "Owner",
                "ann@contoso.com; bob@FABRIKAM.com, eve@evil.example, not an address, ann@contoso.com",
            )]))
            .expect("a tag");
        let owners: Vec<String> = found.owners.iter().map(ToString::to_string).collect();
        assert_eq!(owners, ["ann@contoso.com", "bob@FABRIKAM.com"]);
        assert_eq!(found.ignored, ["eve@evil.example", "not an address"]);
    }

    #[test]
    fn no_tag_or_an_empty_one_names_nobody() {
        assert_eq!(tag().owners(&tags(&[("team", "ann@contoso.com")])), None);
        assert_eq!(tag().owners(&tags(&[("owner", " ; ")])), None);
    }
}
