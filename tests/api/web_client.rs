//! A browser without JavaScript for the page tests: the CSRF and session cookies kept by
//! hand (reqwest's cookie store is not enabled), no redirect followed, so each test sees
//! exactly what the server answered.

use crate::helpers::{TestApp, PASSWORD};

/// A browser without JavaScript: keeps its two cookies by hand, follows no redirect.
pub(crate) struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    /// The token the pages put in their forms: the CSRF cookie's while signed out, the
    /// session's once signed in.
    pub(crate) csrf: String,
    /// The CSRF cookie, as the sign-in page set it.
    pub(crate) csrf_cookie: String,
    pub(crate) session: Option<String>,
    /// The Set-Cookie headers of the sign-in page and the sign-in, as sent.
    pub(crate) set_cookies: Vec<String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) body: String,
}

impl<'a> Browser<'a> {
    /// Only the CSRF cookie, from the sign-in page: signed out.
    pub(crate) async fn anonymous(app: &'a TestApp, brand: &str) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = client
            .get(format!("{}/negozio/{brand}/accedi", app.address))
            .send()
            .await
            .unwrap();
        let set_cookies = set_cookies(&response);
        let csrf =
            cookie(&response, "rinnovo_csrf").expect("the sign-in page sets the CSRF cookie");
        let body = response.text().await.unwrap();
        assert_eq!(
            hidden(&body, "csrf_token"),
            csrf,
            "the form repeats the cookie"
        );
        Self {
            app,
            client,
            csrf_cookie: csrf.clone(),
            csrf,
            session: None,
            set_cookies,
        }
    }

    /// Signed in through the shared sign-in form of visura.
    pub(crate) async fn signed_in(app: &'a TestApp, email: &str) -> (Self, String) {
        Self::signed_in_to(app, "visura", email).await
    }

    /// Signed in through the shared sign-in form of `brand`.
    pub(crate) async fn signed_in_to(app: &'a TestApp, brand: &str, email: &str) -> (Self, String) {
        let mut me = Self::anonymous(app, brand).await;
        let response = me
            .client
            .post(format!("{}/negozio/{brand}/accedi", app.address))
            .header("cookie", me.cookie_header())
            .form(&[
                ("csrf_token", me.csrf.as_str()),
                ("email", email),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "sign-in");
        me.set_cookies.extend(set_cookies(&response));
        me.session = cookie(&response, "rinnovo_session");
        assert!(me.session.is_some(), "a session cookie");
        let landing = location(&response).unwrap();
        // The forms of the session carry its own token: read it as a browser would.
        let mut page = me.get(&landing).await;
        while let Some(next) = page.location.clone() {
            page = me.get(&next).await;
        }
        me.csrf = hidden(&page.body, "csrf_token");
        (me, landing)
    }

    pub(crate) fn cookie_header(&self) -> String {
        let mut header = format!("rinnovo_csrf={}", self.csrf_cookie);
        if let Some(session) = &self.session {
            header.push_str(&format!("; rinnovo_session={session}"));
        }
        header
    }

    pub(crate) async fn get(&self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.app.address))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        page(response).await
    }

    /// Posts a form with the page's CSRF token.
    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf_token", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly `fields`.
    pub(crate) async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.app.address))
            .header("cookie", self.cookie_header())
            .form(fields)
            .send()
            .await
            .unwrap();
        page(response).await
    }

    /// Uploads a statement through the import form: the token part first, then the file,
    /// as a browser sends them.
    pub(crate) async fn import(&self, token: Option<&str>, file: &str) -> Page {
        let mut form = reqwest::multipart::Form::new();
        if let Some(token) = token {
            form = form.text("csrf_token", token.to_owned());
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::text(file.to_owned())
                .file_name("estratto.xml")
                .mime_str("text/xml")
                .unwrap(),
        );
        self.post_multipart("/backoffice/estratti", form).await
    }

    /// Posts a multipart form (one with a file field) as it is.
    pub(crate) async fn post_multipart(&self, path: &str, form: reqwest::multipart::Form) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.app.address))
            .header("cookie", self.cookie_header())
            .multipart(form)
            .send()
            .await
            .unwrap();
        page(response).await
    }
}

fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, v)| *n == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

fn location(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The value of the hidden input `name` in a page.
pub(crate) fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    body[start..start + body[start..].find('"').unwrap()].to_owned()
}

/// The text of the element with `id` (no nested elements in the ones tested).
pub(crate) fn text_of(body: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let open = start + body[start..].find('>').unwrap() + 1;
    let close = open + body[open..].find('<').unwrap();
    body[open..close].trim().to_owned()
}

async fn page(response: reqwest::Response) -> Page {
    Page {
        status: response.status().as_u16(),
        location: location(&response),
        body: response.text().await.unwrap(),
    }
}
