//! Queues the renewals of benches/issuance.sh.
//!
//!   cargo bench --bench issuance_data -- queue DATABASE_URL DATA_DIR KEYS_DIR COUNT
//!
//! Registers COUNT devices of the demo holder BNCLRA85T52F205E, each with a signature
//! certificate 40 days from expiry (registry rows only: what is measured is the new
//! certificates), gives the registration officer officer@bench.example COUNT RIN-FIRMA
//! coupons, then, per device, makes an RSA-2048 CSR with one of the PKCS#8 keys in
//! KEYS_DIR (made by `openssl genpkey`; devices share a pool of keys, since generating
//! 10,000 RSA keys would take longer than the benchmark) and queues its renewal through
//! `renewals::request`, with every check a desktop agent's request goes through.

use std::time::Instant;

use chrono::{Duration, Utc};
use diesel::prelude::*;
use rinnovo::catalog;
use rinnovo::coupons::{self, CouponKey, NewCoupon, COUPON_KEY_FILE};
use rinnovo::db::schema::{certificates, devices, holders, orders, users};
use rinnovo::db::{build_pool, DatabaseUrl, DbConnection};
use rinnovo::renewals::request::{request, RenewalItem};
use rinnovo::renewals::{csr, RenewalPolicy};
use uuid::Uuid;

const BRAND: &str = "visura";
const HOLDER: &str = "BNCLRA85T52F205E";
const OFFICER: &str = "officer@bench.example";
const THREADS: usize = 4;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; only the positional arguments matter here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["queue", url, data_dir, keys_dir, count] => queue(url, data_dir, keys_dir, count.parse()?),
        _ => {
            eprintln!("usage: issuance_data queue DATABASE_URL DATA_DIR KEYS_DIR COUNT");
            std::process::exit(2);
        }
    }
}

fn queue(url: &str, data_dir: &str, keys_dir: &str, count: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let url = DatabaseUrl::parse(url).map_err(anyhow::Error::msg)?;
    let pool = build_pool(&url, THREADS as u32 + 1)?;
    let mut conn = pool.get()?;
    let now = Utc::now();
    let coupon_key = CouponKey::new(rinnovo::secrets::load_or_create(
        None,
        std::path::Path::new(data_dir),
        COUPON_KEY_FILE,
    )?);

    let (holder_id, given_name, surname): (String, String, String) = holders::table
        .filter(holders::codice_fiscale.eq(HOLDER))
        .select((holders::id, holders::given_name, holders::surname))
        .first(&mut conn)?;
    let subject = rinnovo::ca::Subject {
        codice_fiscale: HOLDER.into(),
        given_name,
        surname,
    };
    let officer: String = users::table
        .filter(users::brand_id.eq(BRAND))
        .filter(users::email.eq(OFFICER))
        .select(users::id)
        .first(&mut conn)?;
    let product = catalog::list(&mut conn, BRAND, false)?
        .into_iter()
        .find(|p| p.code == "RIN-FIRMA")
        .ok_or_else(|| anyhow::anyhow!("no RIN-FIRMA"))?;

    // One fulfilled order holding the coupons.
    let order_id = Uuid::now_v7().to_string();
    diesel::insert_into(orders::table)
        .values((
            orders::id.eq(&order_id),
            orders::brand_id.eq(BRAND),
            orders::user_id.eq(&officer),
            orders::status.eq("fulfilled"),
            orders::payment_method.eq("prepaid"),
            orders::net_cents.eq(0),
            orders::vat_cents.eq(0),
            orders::gross_cents.eq(0),
            orders::email.eq(OFFICER),
            orders::created_at.eq(now.naive_utc()),
        ))
        .execute(&mut conn)?;
    let new_coupons: Vec<NewCoupon> = (0..count)
        .map(|_| {
            NewCoupon::generate(
                BRAND,
                &order_id,
                &officer,
                &product.id,
                product.net_price.cents(),
                product.vat_rate.basis_points() as i32,
                now + Duration::days(365),
            )
        })
        .collect();
    coupons::insert_all(&mut conn, &coupon_key, &new_coupons, now)?;

    // The devices and their certificates, 40 days from expiry (multi-row inserts are
    // per backend in diesel).
    let device_ids: Vec<String> = (0..count).map(|_| Uuid::now_v7().to_string()).collect();
    let certificate_ids: Vec<String> = (0..count).map(|_| Uuid::now_v7().to_string()).collect();
    let not_after = now + Duration::days(40);
    let not_before = not_after - Duration::days(3 * 365);
    let suffix = &Uuid::new_v4().simple().to_string()[..8];
    for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
        let device_rows: Vec<_> = chunk
            .iter()
            .map(|&n| {
                (
                    devices::id.eq(&device_ids[n]),
                    devices::holder_id.eq(&holder_id),
                    devices::brand_id.eq(BRAND),
                    devices::serial_number.eq(format!("B{suffix}{n:07}")),
                    devices::kind.eq("smart_card"),
                    devices::activated_at.eq(not_before.naive_utc()),
                    devices::created_at.eq(now.naive_utc()),
                )
            })
            .collect();
        match &mut *conn {
            DbConnection::Postgres(c) => diesel::insert_into(devices::table)
                .values(&device_rows)
                .execute(c),
            DbConnection::Sqlite(c) => diesel::insert_into(devices::table)
                .values(&device_rows)
                .execute(c),
        }?;
        let certificate_rows: Vec<_> = chunk
            .iter()
            .map(|&n| {
                (
                    certificates::id.eq(&certificate_ids[n]),
                    certificates::device_id.eq(&device_ids[n]),
                    certificates::kind.eq("signature"),
                    certificates::issuer.eq("CN=Bench Registry CA"),
                    certificates::serial_number.eq(format!("{suffix}{n:08X}")),
                    certificates::subject.eq(subject.display()),
                    certificates::not_before.eq(not_before.naive_utc()),
                    certificates::not_after.eq(not_after.naive_utc()),
                    certificates::status.eq("active"),
                    certificates::created_at.eq(now.naive_utc()),
                )
            })
            .collect();
        match &mut *conn {
            DbConnection::Postgres(c) => diesel::insert_into(certificates::table)
                .values(&certificate_rows)
                .execute(c),
            DbConnection::Sqlite(c) => diesel::insert_into(certificates::table)
                .values(&certificate_rows)
                .execute(c),
        }?;
    }
    drop(conn);
    eprintln!(
        "registry and coupons: {count} devices in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The CSRs and the requests, on a few threads.
    let keys: Vec<String> = std::fs::read_dir(keys_dir)?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "pem"))
        .map(|entry| std::fs::read_to_string(entry.path()))
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(!keys.is_empty(), "no keys in {keys_dir}");
    let started = Instant::now();
    let per_thread = count.div_ceil(THREADS);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (pool, keys, subject, coupon_key) = (&pool, &keys, &subject, &coupon_key);
                let (device_ids, certificate_ids, new_coupons) =
                    (&device_ids, &certificate_ids, &new_coupons);
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut conn = pool.get()?;
                    let policy = RenewalPolicy::default();
                    for n in (t * per_thread)..((t + 1) * per_thread).min(count) {
                        let key = rcgen::KeyPair::from_pem_and_sign_algo(
                            &keys[n % keys.len()],
                            &rcgen::PKCS_RSA_SHA256,
                        )?;
                        let pem = csr_params(subject).serialize_request(&key)?.pem()?;
                        let item = RenewalItem {
                            certificate_id: certificate_ids[n].clone(),
                            csr: csr::check(&pem).map_err(|e| anyhow::anyhow!("{e}"))?,
                            coupon: new_coupons[n].code.clone(),
                        };
                        request(
                            &mut conn,
                            coupon_key,
                            &policy,
                            &device_ids[n],
                            BRAND,
                            &[item],
                            Utc::now(),
                        )
                        .map_err(|e| anyhow::anyhow!("renewal {n}: {e}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("thread panicked"))??;
        }
        Ok(())
    })?;
    eprintln!(
        "queued {count} renewals (RSA-2048 CSRs, {} keys) in {:.1} s",
        keys.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn csr_params(subject: &rinnovo::ca::Subject) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    let mut name = rcgen::DistinguishedName::new();
    let (surname, given) = (
        subject.surname.to_uppercase(),
        subject.given_name.to_uppercase(),
    );
    name.push(rcgen::DnType::CountryName, "IT");
    name.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 4]),
        surname.as_str(),
    );
    name.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 42]),
        given.as_str(),
    );
    name.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]),
        format!("TINIT-{}", subject.codice_fiscale),
    );
    name.push(rcgen::DnType::CommonName, format!("{surname} {given}"));
    params.distinguished_name = name;
    params
}
