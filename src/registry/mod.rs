//! The registry of certificate holders, their signature devices and the certificates
//! on them: what the lookup reads and what renewals later change.

pub mod codice_fiscale;
mod store;

pub use codice_fiscale::{CodiceFiscale, CodiceFiscaleError, Sex};
pub use store::{find_holder_devices, Certificate, Device, Holder, HolderDevices};

use std::fmt;

use serde::{Deserialize, Serialize};

/// Makes an enum stored as text: `as_str` for writing, `parse` for reading, and the
/// serde names the same as the stored ones.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// The physical device that carries the certificates.
    DeviceKind { SmartCard => "smart_card", UsbKey => "usb_key" }
);

text_enum!(
    /// A device carries one certificate of each kind. The signature certificate makes
    /// qualified signatures; the authentication one is the CNS (Carta Nazionale dei Servizi).
    CertificateKind { Signature => "signature", Authentication => "authentication" }
);

text_enum!(
    /// A certificate's life in the registry. `superseded` once its renewal is installed.
    CertificateStatus { Active => "active", Superseded => "superseded", Revoked => "revoked" }
);
