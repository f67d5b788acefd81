//! Group -> role mapping per connection. Protocols that carry groups (SAML attributes, LDAP `memberOf` or a
//! group search) hand them to the shared ending, which applies the connection's rules at every sign-in: the
//! highest role any of the person's groups maps to, else the connection's default role. A rule names a group as the
//! IdP sends it, or, for a directory group, by its DN or its CN (`cn=admins,ou=groups,dc=example,dc=com` matches
//! `admins` too); matching ignores case. Owners are made by an owner: no rule grants or takes away `owner`.
use crate::model::GroupRole;
use crate::service::domain::Role;
use crate::service::error::{ServiceError, ServiceResult};
use serde::{Deserialize, Serialize};

/// At most this many rules per connection, and group names this long.
const MAX_RULES: usize = 100;
const MAX_GROUP_LEN: usize = 512;

/// What `connections.group_roles` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupPolicy {
    #[serde(default)]
    pub rules: Vec<GroupRole>,
    /// Only people in a mapped group may sign in through the connection.
    #[serde(default)]
    pub required: bool,
}

/// What the rules decide for one person's groups.
#[derive(Debug, PartialEq, Eq)]
pub enum Mapped {
    /// No rules (or the protocol carries no groups): the default role for a new member, nothing changes otherwise.
    Unmapped,
    /// The role the person's groups give (or the default role when none matches and groups are not required).
    Role(Role),
    /// Groups are required and none of the person's groups is mapped.
    NotAllowed,
}

impl GroupPolicy {
    pub fn from_column(raw: &str) -> Self {
        serde_json::from_str(raw).unwrap_or_default()
    }

    /// Validates an owner's rules (the API and the console).
    pub fn parse(rules: &[GroupRole], required: bool) -> ServiceResult<Self> {
        if rules.len() > MAX_RULES {
            return Err(ServiceError::validation("groupRoles", format!("At most {MAX_RULES} group rules per connection.")));
        }
        let mut out: Vec<GroupRole> = Vec::new();
        for r in rules {
            let group = r.group.trim();
            if group.is_empty() || group.len() > MAX_GROUP_LEN || group.chars().any(char::is_control) {
                return Err(ServiceError::validation("groupRoles", format!("Name each group as the IdP sends it (1 to {MAX_GROUP_LEN} characters).")));
            }
            let role = match Role::parse(&r.role) {
                Ok(role @ (Role::Member | Role::Admin)) => role,
                _ => return Err(ServiceError::validation("groupRoles", format!("The role for {group:?} must be member or admin (owners are made by an owner)."))),
            };
            if out.iter().any(|o| o.group.eq_ignore_ascii_case(group)) {
                return Err(ServiceError::validation("groupRoles", format!("{group:?} is mapped twice.")));
            }
            out.push(GroupRole { group: group.to_string(), role: role.as_str().to_string() });
        }
        if required && out.is_empty() {
            return Err(ServiceError::validation("groupsRequired", "Map at least one group before requiring one."));
        }
        Ok(Self { rules: out, required })
    }

    /// The role `groups` give under these rules (`None`: the protocol carries no groups).
    pub fn map(&self, groups: Option<&[String]>, default_role: Role) -> Mapped {
        let Some(groups) = groups.filter(|_| !self.rules.is_empty()) else { return Mapped::Unmapped };
        let best = self
            .rules
            .iter()
            .filter(|r| groups.iter().any(|g| names_group(g, &r.group)))
            .filter_map(|r| Role::parse(&r.role).ok())
            .max();
        match best {
            Some(role) => Mapped::Role(role),
            None if self.required => Mapped::NotAllowed,
            None => Mapped::Role(default_role),
        }
    }
}

/// Whether the group value `got` (a name, or a DN) is the rule's `want` (a name, a DN, or a DN's CN).
fn names_group(got: &str, want: &str) -> bool {
    let got = got.trim();
    if got.eq_ignore_ascii_case(want) {
        return true;
    }
    // The first RDN of a DN, when it is a CN without escapes (`cn=admins,ou=groups,...` -> `admins`).
    let Some((first, _)) = got.split_once(',') else { return false };
    let Some((attr, value)) = first.split_once('=') else { return false };
    attr.trim().eq_ignore_ascii_case("cn") && !value.contains('\\') && value.trim().eq_ignore_ascii_case(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(g: &str, r: &str) -> GroupRole {
        GroupRole { group: g.into(), role: r.into() }
    }

    #[test]
    fn the_highest_mapped_role_wins_and_dns_match_by_cn() {
        let p = GroupPolicy::parse(&[rule("staff", "member"), rule("cn=Admins,ou=groups,dc=example,dc=com", "admin")], false).unwrap();
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(p.map(Some(&g(&["cn=staff,ou=groups,dc=example,dc=com"])), Role::Member), Mapped::Role(Role::Member));
        assert_eq!(p.map(Some(&g(&["STAFF", "cn=admins,ou=groups,dc=example,dc=com"])), Role::Member), Mapped::Role(Role::Admin));
        assert_eq!(p.map(Some(&g(&["other"])), Role::Admin), Mapped::Role(Role::Admin));
        assert_eq!(p.map(None, Role::Member), Mapped::Unmapped);
        // A CN with an escaped comma is not split into a shorter name.
        assert_eq!(p.map(Some(&g(&["cn=staff\\,x,ou=g"])), Role::Member), Mapped::Role(Role::Member));
        assert!(!names_group("cn=staff\\,x,ou=g", "staff"));
        assert!(!names_group("ou=staff,dc=x", "staff"));
    }

    #[test]
    fn required_groups_refuse_everyone_else_and_owner_is_never_granted() {
        let p = GroupPolicy::parse(&[rule("engineering", "member")], true).unwrap();
        assert_eq!(p.map(Some(&[]), Role::Member), Mapped::NotAllowed);
        assert_eq!(p.map(Some(&["Engineering".to_string()]), Role::Member), Mapped::Role(Role::Member));
        assert!(GroupPolicy::parse(&[rule("x", "owner")], false).is_err());
        assert!(GroupPolicy::parse(&[rule("x", "admin"), rule("X", "member")], false).is_err());
        assert!(GroupPolicy::parse(&[], true).is_err());
        assert!(GroupPolicy::parse(&[rule(" ", "member")], false).is_err());
        assert_eq!(GroupPolicy::from_column("{}"), GroupPolicy::default());
    }
}
