//! Email: rendered from templates, written to the outbox in the transaction of the change
//! that causes it, delivered by the dispatcher with retries. An email is never lost
//! because the mail server was down.

pub mod dispatcher;
pub mod outbox;
pub mod smtp;
pub mod templates;
pub mod wake;

pub use dispatcher::{DispatchSettings, Transport};
pub use outbox::{Attachment, OutgoingEmail};
