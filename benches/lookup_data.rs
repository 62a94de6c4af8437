//! Writes registry data for benches/lookup.sh as CSV whose header names the columns (the
//! loader copies by name, so a column added later with a default or NULL does not break
//! it): holders.csv, devices.csv, certificates.csv, plus codici.txt with one codice
//! fiscale per line for the load generator.
//!
//! Usage: cargo bench --bench lookup_data -- OUT_DIR HOLDERS CERTIFICATES
//! (benches/lookup.sh runs it; with SMALL=1 in the dev profile).
//!
//! Every codice fiscale is valid (it goes through the same check-character code as the
//! service) and unique; holders get one or two devices so that the certificates add up;
//! expiry dates are spread over the next three years, so every renewal status occurs.
//! One holder in ten has an email address, as a registry loaded from a CA would: the
//! reminder worker has real work while the lookups are measured, and must leave the
//! other nine alone.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use rinnovo::registry::codice_fiscale::check_character;

const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";

fn codice_fiscale(index: u64) -> String {
    let mut code = Vec::with_capacity(16);
    let mut rest = index;
    for _ in 0..6 {
        code.push(b'A' + (rest % 26) as u8);
        rest /= 26;
    }
    let year = 40 + index % 60;
    let month = MONTHS[(index / 7 % 12) as usize];
    let day = 1 + index % 28 + if index % 2 == 0 { 0 } else { 40 };
    code.extend(format!("{year:02}").bytes());
    code.push(month);
    code.extend(format!("{day:02}").bytes());
    code.push(b'A' + (index / 3 % 26) as u8);
    code.extend(format!("{:03}", index % 1000).bytes());
    code.push(check_character(&code));
    String::from_utf8(code).expect("ASCII")
}

fn timestamp(days_from_now: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days_from_now))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn main() -> std::io::Result<()> {
    // `cargo bench` passes `--bench`; only the positional arguments matter here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [out, holders, certificates] = args.as_slice() else {
        eprintln!("usage: lookup_data OUT_DIR HOLDERS CERTIFICATES");
        std::process::exit(2);
    };
    let out = PathBuf::from(out);
    let holders: u64 = holders.parse().expect("HOLDERS is a number");
    let certificates: u64 = certificates.parse().expect("CERTIFICATES is a number");
    let devices_wanted = certificates / 2;
    assert!(
        devices_wanted >= holders && devices_wanted <= 2 * holders,
        "between one and two devices per holder: CERTIFICATES must be 2..4 x HOLDERS"
    );
    std::fs::create_dir_all(&out)?;
    let writer = |name: &str| File::create(out.join(name)).map(BufWriter::new);
    let (mut h, mut d, mut c, mut codes) = (
        writer("holders.csv")?,
        writer("devices.csv")?,
        writer("certificates.csv")?,
        writer("codici.txt")?,
    );

    writeln!(h, "id,codice_fiscale,given_name,surname,email,created_at")?;
    writeln!(
        d,
        "id,holder_id,brand_id,serial_number,kind,activated_at,created_at"
    )?;
    writeln!(
        c,
        "id,device_id,kind,issuer,serial_number,subject,not_before,not_after,status,created_at"
    )?;
    let now = timestamp(0);
    let extra_devices = devices_wanted - holders;
    let mut device_count = 0u64;
    for holder in 0..holders {
        let cf = codice_fiscale(holder);
        // Empty: no address (NULL once loaded).
        let email = if holder % 10 == 3 {
            format!("titolare{holder}@bench.example")
        } else {
            String::new()
        };
        writeln!(
            h,
            "h{holder},{cf},Nome{holder},Cognome{holder},{email},{now}"
        )?;
        writeln!(codes, "{cf}")?;
        // The first `extra_devices` holders have a second device.
        let devices_here = if holder < extra_devices { 2 } else { 1 };
        for _ in 0..devices_here {
            let device = device_count;
            device_count += 1;
            // One brand: the benchmark user (a Visura customer) sees every device.
            let brand = "visura";
            writeln!(
                d,
                "d{device},h{holder},{brand},{:010},smart_card,{},{now}",
                1_205_100_000 + device,
                timestamp(-1000)
            )?;
            let expires_in = (device % 1100) as i64 - 100;
            for (n, kind) in ["signature", "authentication"].iter().enumerate() {
                writeln!(
                    c,
                    "c{device}-{n},d{device},{kind},CN=Bench CA,{:X},CN=HOLDER {holder},{},{},active,{now}",
                    device * 2 + n as u64,
                    timestamp(expires_in - 1095),
                    timestamp(expires_in),
                )?;
            }
        }
    }
    for file in [&mut h, &mut d, &mut c, &mut codes] {
        file.flush()?;
    }
    eprintln!(
        "wrote {holders} holders, {device_count} devices, {} certificates to {}",
        device_count * 2,
        out.display()
    );
    Ok(())
}
