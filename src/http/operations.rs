//! Every operation of the API, listed once. Each handler says its method and path in its
//! actix attribute (`#[get("/api/v1/...")]`) beside its `#[utoipa::path]`; the
//! router serves it from there and the OpenAPI document describes it from there, so a
//! route cannot go undocumented and the document cannot name a route that is not served.
//!
//! The attribute makes each handler a unit struct of its name: in the handler's module, a
//! local or an import of the same name clashes with it (the compiler says so), so those
//! take other names.

use std::collections::BTreeMap;

use actix_web::dev::HttpServiceFactory;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa::openapi::PathItem;
use utoipa_actix_web::OpenApiFactory;

use super::{
    agent, auth, backoffice_invoices, billing, card_payments, catalog, coupons, emails, health,
    invoices, lookup, me, metrics, officer_applications, orders, payments, prepaid, renewal_info,
    renewals, sdi, sdi_receipts, users,
};

/// Where the operations go: the router, or the document.
pub(super) trait Operations {
    /// Starts the document's section `tag` (its tag): the operations added next are in it.
    fn section(&mut self, tag: &'static str) -> &mut Self;
    fn add<H: HttpServiceFactory + OpenApiFactory + 'static>(&mut self, handler: H) -> &mut Self;
}

/// The API by section, as the document shows it. Within a section, the order is the one
/// the router tries: a fixed path before a parameter that would also match it
/// (`payments/summary` before `payments/{id}`).
pub(super) fn all(api: &mut impl Operations) {
    api.section("health")
        .add(health::live)
        .add(health::ready)
        .add(metrics::scrape);
    api.section("auth")
        .add(auth::signup)
        .add(auth::login)
        .add(auth::refresh)
        .add(auth::logout)
        .add(auth::confirm_email)
        .add(auth::request_password_reset)
        .add(auth::confirm_password_reset);
    api.section("me")
        .add(me::get)
        .add(me::patch)
        .add(billing::get)
        .add(billing::put)
        .add(me::revoke_sessions)
        .add(me::resend_confirmation)
        .add(officer_applications::mine)
        .add(officer_applications::apply);
    api.section("lookup")
        .add(lookup::bulk_lookup)
        .add(lookup::holder_devices);
    api.section("catalog")
        .add(catalog::products)
        .add(catalog::create_quote);
    api.section("orders")
        .add(orders::list)
        .add(orders::create)
        .add(orders::show)
        .add(orders::resend_codes)
        .add(invoices::xml)
        .add(invoices::of_order)
        .add(invoices::document_xml)
        .add(invoices::document_pdf);
    api.section("coupons")
        .add(coupons::list)
        .add(coupons::export)
        .add(coupons::status);
    api.section("prepaid")
        .add(prepaid::balance)
        .add(prepaid::entries)
        .add(prepaid::list_top_ups)
        .add(prepaid::request_top_up);
    api.section("payments")
        .add(card_payments::notification)
        .add(card_payments::page);
    api.section("back-office")
        .add(payments::imports::statements)
        .add(payments::imports::import)
        .add(payments::queue::list)
        .add(payments::summary::summary)
        .add(payments::queue::show)
        .add(payments::queue::match_by_hand)
        .add(payments::queue::refund)
        .add(card_payments::list)
        .add(card_payments::show)
        .add(card_payments::refund)
        .add(card_payments::retry_refund)
        .add(prepaid::search)
        .add(prepaid::show)
        .add(prepaid::adjust)
        .add(orders::resend_codes_as_operator)
        .add(coupons::void)
        .add(catalog::update_product)
        .add(backoffice_invoices::list)
        .add(backoffice_invoices::export)
        .add(sdi::list)
        .add(sdi::retry)
        .add(sdi_receipts::list)
        .add(sdi_receipts::import)
        .add(sdi_receipts::rejected)
        .add(sdi_receipts::resend)
        .add(emails::list)
        .add(emails::retry)
        .add(users::list)
        .add(users::show)
        .add(users::disable)
        .add(users::enable)
        .add(users::remove_officer_role)
        .add(officer_applications::list)
        .add(officer_applications::approve)
        .add(officer_applications::refuse);
    api.section("agent")
        .add(agent::challenge)
        .add(agent::session)
        .add(agent::certificates)
        .add(renewals::request_renewals)
        .add(renewals::renewal)
        .add(renewals::installed);
    api.section("renewal-info").add(renewal_info::show);
}

/// The router: each operation as actix declares it (a resource of its path that answers
/// its method), and then each path once more, where any other method is answered 405 with
/// the methods it allows (a method's resource passes on a request of another method).
pub(super) struct Router<'a> {
    config: &'a mut web::ServiceConfig,
    /// The methods of each path, the paths in the order first met.
    allowed: Vec<(String, Vec<&'static str>)>,
}

impl<'a> Router<'a> {
    pub(super) fn serve(config: &'a mut web::ServiceConfig) {
        let mut router = Router {
            config,
            allowed: Vec::new(),
        };
        all(&mut router);
        for (path, methods) in router.allowed {
            let allow = methods.join(", ");
            router.config.service(web::resource(path).to(move || {
                let allowed = HttpResponse::MethodNotAllowed()
                    .insert_header((header::ALLOW, allow.clone()))
                    .finish();
                async { allowed }
            }));
        }
    }
}

impl Operations for Router<'_> {
    fn section(&mut self, _tag: &'static str) -> &mut Self {
        self
    }

    fn add<H: HttpServiceFactory + OpenApiFactory + 'static>(&mut self, handler: H) -> &mut Self {
        for (path, mut item) in handler.paths().paths {
            let methods: Vec<_> = by_method(&mut item).map(|(method, _)| method).collect();
            match self.allowed.iter_mut().find(|(known, _)| *known == path) {
                Some((_, known)) => known.extend(methods),
                None => self.allowed.push((path, methods)),
            }
        }
        self.config.service(handler);
        self
    }
}

/// A path item's operations, each with its method as `Allow` names it.
pub(super) fn by_method(
    item: &mut PathItem,
) -> impl Iterator<Item = (&'static str, &mut utoipa::openapi::path::Operation)> {
    [
        ("GET", &mut item.get),
        ("POST", &mut item.post),
        ("PUT", &mut item.put),
        ("PATCH", &mut item.patch),
        ("DELETE", &mut item.delete),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation.as_mut()?)))
}

type Schema = utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>;

/// The document's paths, the schemas their operations name, and the names that two
/// different schemas were given: the document keeps one schema a name, so a second type
/// of the same name would be described as the first.
#[derive(Default)]
pub(super) struct Described {
    pub paths: utoipa::openapi::path::Paths,
    pub schemas: BTreeMap<String, Schema>,
    pub clashes: Vec<String>,
    section: &'static str,
}

impl Operations for Described {
    fn section(&mut self, tag: &'static str) -> &mut Self {
        self.section = tag;
        self
    }

    fn add<H: HttpServiceFactory + OpenApiFactory + 'static>(&mut self, handler: H) -> &mut Self {
        let mut paths = handler.paths();
        for item in paths.paths.values_mut() {
            for (_, operation) in by_method(item) {
                operation.tags = Some(vec![self.section.to_owned()]);
            }
        }
        self.paths.merge(paths);
        let mut named = Vec::new();
        handler.schemas(&mut named);
        for (name, schema) in named {
            match self.schemas.get(&name) {
                Some(known) if *known != schema => self.clashes.push(name),
                Some(_) => {}
                None => {
                    self.schemas.insert(name, schema);
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_schemas_of_the_document_share_a_name() {
        let mut described = Described::default();
        all(&mut described);
        assert!(described.schemas.len() > 50, "{}", described.schemas.len());
        assert!(
            described.clashes.is_empty(),
            "one name for two schemas: {:?}",
            described.clashes
        );
    }

    #[test]
    fn every_section_is_a_tag_the_document_describes() {
        let mut document = super::super::openapi::document();
        let declared: Vec<String> = (document.tags.iter().flatten())
            .map(|tag| tag.name.clone())
            .collect();
        for item in document.paths.paths.values_mut() {
            for (method, operation) in by_method(item) {
                let tags = operation.tags.clone().unwrap_or_default();
                assert_eq!(tags.len(), 1, "{method} {:?}", operation.operation_id);
                assert!(
                    declared.contains(&tags[0]),
                    "{method} {:?}: section {} is not declared",
                    operation.operation_id,
                    tags[0]
                );
            }
        }
    }
}
