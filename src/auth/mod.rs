//! Accounts and sign-in: users of a brand with a role, passwords, access and refresh
//! tokens, the password throttle, what a user does to their own account, and recovering a
//! forgotten password.

pub mod account;
pub mod confirmation;
pub mod management;
pub mod officer_applications;
pub mod password;
pub mod recovery;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;
mod viewer;
pub mod web_sessions;

pub use password::{NewPassword, PasswordError};
pub use tokens::{AccessClaims, TokenError, TokenIssuer};
pub use users::{NewUser, ProfileChanges, User, UserError};
pub use viewer::Viewer;

text_enum!(
    /// What a user may do. Checked in one place: the HTTP extractors.
    Role {
        Customer => "customer",
        RegistrationOfficer => "registration_officer",
        BackOffice => "back_office",
    }
);

impl Role {
    /// Customers and registration officers buy, and so have a prepaid account.
    pub fn buys(self) -> bool {
        matches!(self, Role::Customer | Role::RegistrationOfficer)
    }
}
