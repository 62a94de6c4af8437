//! The registry of certificate holders, their signature devices and the certificates
//! on them: what the lookup reads and what renewals later change.

pub mod codice_fiscale;
pub mod enroll;
mod store;

pub use codice_fiscale::{CodiceFiscale, CodiceFiscaleError, Sex};
pub use store::{find_holder_devices, Certificate, Device, Holder, HolderDevices};

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
