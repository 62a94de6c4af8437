//! Who may see a buyer's records (an order, its invoice and credit notes, its card
//! payment): the rule is written here once, so that the API, the pages and the documents'
//! downloads never disagree about it.

use super::{Role, User};

/// A signed-in user asking for a buyer's record.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub user_id: &'a str,
    pub brand_id: &'a str,
    pub role: Role,
}

impl Viewer<'_> {
    /// Whether the viewer may see a record of `brand_id` bought by `buyer_id`: the buyer
    /// their own, the back-office any of its brand's. Anyone else is answered as if the
    /// record did not exist, so an id tells a stranger nothing.
    pub fn may_see(&self, brand_id: &str, buyer_id: &str) -> bool {
        brand_id == self.brand_id && (self.role == Role::BackOffice || buyer_id == self.user_id)
    }
}

impl<'a> From<&'a User> for Viewer<'a> {
    /// A signed-in user of the pages.
    fn from(user: &'a User) -> Self {
        Self {
            user_id: &user.id,
            brand_id: &user.brand_id,
            role: user.role,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(role: Role) -> Viewer<'static> {
        Viewer {
            user_id: "u1",
            brand_id: "b1",
            role,
        }
    }

    #[test]
    fn the_buyer_sees_their_own_and_no_one_elses() {
        for role in [Role::Customer, Role::RegistrationOfficer] {
            assert!(viewer(role).may_see("b1", "u1"));
            assert!(!viewer(role).may_see("b1", "u2"));
            assert!(!viewer(role).may_see("b2", "u1"));
        }
    }

    #[test]
    fn the_back_office_sees_its_brands_only() {
        assert!(viewer(Role::BackOffice).may_see("b1", "u2"));
        assert!(!viewer(Role::BackOffice).may_see("b2", "u2"));
    }
}
