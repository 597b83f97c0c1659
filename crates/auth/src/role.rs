//! Roles and what they allow.
//!
//! Roles are strictly ordered (`Viewer < Operator < Admin`) so an
//! authorization check is a single comparison: a principal may do something
//! when its role is at least the required one. Retrying a saga needs
//! [`Role::Operator`]; managing users and API tokens needs [`Role::Admin`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::AuthError;

/// A user's role. The declaration order is the privilege order, which the
/// derived `Ord` relies on: do not reorder the variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything the dashboard shows; changes nothing.
    Viewer,
    /// Viewer plus operational actions such as retrying a saga.
    Operator,
    /// Operator plus user and API-token management.
    Admin,
}

impl Role {
    /// All roles, least privileged first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// Parses the lowercase name (`viewer`, `operator`, `admin`), ignoring
    /// ASCII case and surrounding whitespace. Anything else is `None`: an
    /// unknown role must never silently become some default privilege.
    pub fn parse(s: &str) -> Option<Role> {
        let s = s.trim();
        Role::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(s))
    }

    /// The canonical lowercase name, as stored and as serialized.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether a principal with this role may perform an action that needs
    /// `required`.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s).ok_or_else(|| AuthError::UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_is_privilege_order() {
        assert!(Role::Viewer < Role::Operator);
        assert!(Role::Operator < Role::Admin);
        assert_eq!(Role::ALL.iter().max(), Some(&Role::Admin));
    }

    #[test]
    fn allows_matrix() {
        let expected = [
            // (have, need, allowed)
            (Role::Viewer, Role::Viewer, true),
            (Role::Viewer, Role::Operator, false),
            (Role::Viewer, Role::Admin, false),
            (Role::Operator, Role::Viewer, true),
            (Role::Operator, Role::Operator, true),
            (Role::Operator, Role::Admin, false),
            (Role::Admin, Role::Viewer, true),
            (Role::Admin, Role::Operator, true),
            (Role::Admin, Role::Admin, true),
        ];
        for (have, need, allowed) in expected {
            assert_eq!(have.allows(need), allowed, "{have} allows {need}");
        }
    }

    #[test]
    fn parse_and_as_str_roundtrip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(role.to_string(), role.as_str());
        }
        assert_eq!(Role::parse(" Operator "), Some(Role::Operator));
        assert_eq!(Role::parse("ADMIN"), Some(Role::Admin));
        assert_eq!(Role::parse(""), None);
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Role::parse("admins"), None);
    }

    #[test]
    fn from_str_error_names_the_value() {
        let err = "superuser".parse::<Role>().unwrap_err();
        assert_eq!(err, AuthError::UnknownRole("superuser".into()));
        assert_eq!(
            err.to_string(),
            "unknown role \"superuser\": expected viewer, operator or admin"
        );
        assert_eq!("viewer".parse::<Role>(), Ok(Role::Viewer));
    }

    #[test]
    fn serde_is_lowercase() {
        assert_eq!(
            serde_json::to_string(&Role::Operator).unwrap(),
            "\"operator\""
        );
        assert_eq!(
            serde_json::from_str::<Role>("\"admin\"").unwrap(),
            Role::Admin
        );
        assert!(serde_json::from_str::<Role>("\"Admin\"").is_err());
    }
}
