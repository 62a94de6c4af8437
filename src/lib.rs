//! rinnovo: renewal coupons and certificate renewal for Italian qualified-signature
//! devices. See DESIGN.md (shared) for the picture; each domain lives in its folder.

pub mod config;
pub mod db;
pub mod http;
pub mod lookup;
pub mod registry;
pub mod seed;
pub mod startup;
pub mod telemetry;
