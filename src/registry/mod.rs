//! The registry of certificate holders, their signature devices and the certificates
//! on them, and the state of their renewals: what the lookup reads and what renewals
//! later change.

pub mod codice_fiscale;
pub mod csr;
pub mod enroll;
mod store;

pub use codice_fiscale::{CodiceFiscale, CodiceFiscaleError, Sex};
pub use store::{
    activate_renewed, add_certificate, add_device, add_holder, find_device_id, find_holder,
    find_holder_devices, find_many_holders_devices, open_renewals, redate_certificate,
    renewal_counts, Certificate, Device, DeviceRenewalCount, Holder, HolderDevices, NewCertificate,
    NewDevice, NewHolder, OpenRenewal,
};

text_enum!(
    /// The physical device that carries the certificates.
    DeviceKind { SmartCard => "smart_card", UsbKey => "usb_key" }
);

text_enum!(
    /// A device carries one certificate of each kind. The signature certificate makes
    /// qualified signatures; the authentication one is the CNS (Carta Nazionale dei Servizi).
    CertificateKind { Signature => "signature", Authentication => "authentication" }
);

impl CertificateKind {
    /// As the holder's emails say it: "il certificato di firma".
    pub fn italian(self) -> &'static str {
        match self {
            Self::Signature => "firma",
            Self::Authentication => "autenticazione (CNS)",
        }
    }
}

text_enum!(
    /// A certificate's life in the registry. `superseded` once its renewal is installed.
    CertificateStatus { Active => "active", Superseded => "superseded", Revoked => "revoked" }
);

text_enum!(
    /// A renewal's life: `queued` → `issuing` → `issued` → `installed`; `queued` or
    /// `issuing` → `rejected` (the certificate was revoked meanwhile) or `failed` (the CA
    /// kept failing). Rejected and failed renewals release their coupon. Here, below the
    /// lookup, because the lookup shows it; only `renewals::state` moves it.
    RenewalState {
        Queued => "queued",
        Issuing => "issuing",
        Issued => "issued",
        Installed => "installed",
        Rejected => "rejected",
        Failed => "failed",
    }
);

impl RenewalState {
    /// Still in progress (at most one per certificate), as stored.
    pub fn open() -> [&'static str; 3] {
        [Self::Queued, Self::Issuing, Self::Issued].map(Self::as_str)
    }

    /// Counted against the device's renewals: all but the ones that gave the coupon back,
    /// as stored.
    pub fn counted() -> [&'static str; 4] {
        [Self::Queued, Self::Issuing, Self::Issued, Self::Installed].map(Self::as_str)
    }
}
