//! The e-mail of a report: a MIME message as mail clients expect it (text and HTML
//! alternatives, attachments, or a picture inline by `cid:`), and its delivery over SMTP
//! (STARTTLS or implicit TLS, login, one timeout).

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::{Security, SmtpConfig};

/// The Content-ID of a picture shown in the message body.
pub(crate) const INLINE_CID: &str = "dashboard";

/// A file carried by the message.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) name: String,
    pub(crate) content_type: &'static str,
    pub(crate) bytes: Vec<u8>,
}

/// What a report's message says and carries.
#[derive(Debug, Clone)]
pub(crate) struct Letter {
    pub(crate) to: Vec<Mailbox>,
    pub(crate) subject: String,
    /// Plain text; the HTML part shows the same text, escaped.
    pub(crate) text: String,
    pub(crate) attachments: Vec<Part>,
    /// A PNG shown in the HTML body (referenced as `cid:dashboard`).
    pub(crate) inline: Option<Part>,
}

/// Builds the MIME message of `letter` from `from`.
pub(crate) fn build(from: &Mailbox, letter: &Letter) -> Result<Message, String> {
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(letter.subject.clone());
    for to in &letter.to {
        builder = builder.to(to.clone());
    }
    let plain = SinglePart::plain(letter.text.clone());
    let mut html = format!(
        "<!DOCTYPE html><html><body><p>{}</p>",
        escape(&letter.text).replace('\n', "<br>")
    );
    let body = match &letter.inline {
        Some(picture) => {
            html.push_str(&format!(
                "<p><img src=\"cid:{INLINE_CID}\" alt=\"{}\" style=\"max-width:100%\"></p></body></html>",
                escape(&picture.name)
            ));
            let image = Attachment::new_inline(INLINE_CID.into())
                .body(picture.bytes.clone(), content_type(picture.content_type)?);
            MultiPart::alternative().singlepart(plain).multipart(
                MultiPart::related()
                    .singlepart(SinglePart::html(html))
                    .singlepart(image),
            )
        }
        None => {
            html.push_str("</body></html>");
            MultiPart::alternative_plain_html(letter.text.clone(), html)
        }
    };
    let message = if letter.attachments.is_empty() {
        builder.multipart(body)
    } else {
        let mut mixed = MultiPart::mixed().multipart(body);
        for part in &letter.attachments {
            mixed = mixed.singlepart(
                Attachment::new(part.name.clone())
                    .body(part.bytes.clone(), content_type(part.content_type)?),
            );
        }
        builder.multipart(mixed)
    };
    message.map_err(|e| format!("cannot build the message: {e}"))
}

fn content_type(value: &str) -> Result<ContentType, String> {
    ContentType::parse(value).map_err(|e| format!("content type {value:?}: {e}"))
}

/// Sends `message` through the server of `smtp`; the error says which step failed.
pub(crate) async fn send(smtp: &SmtpConfig, message: Message) -> Result<(), String> {
    let transport = transport(smtp)?;
    // One deadline for the whole exchange: a server that stops answering mid-way (lettre's
    // own timeout covers single reads only) must not hold the run for minutes.
    match tokio::time::timeout(smtp.timeout, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "SMTP {}:{} refused or failed: {e}",
            smtp.host, smtp.port
        )),
        Err(_) => Err(format!(
            "SMTP {}:{} did not finish within smtp.timeout ({}s)",
            smtp.host,
            smtp.port,
            smtp.timeout.as_secs()
        )),
    }
}

fn transport(smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let tls = match smtp.security {
        Security::None => Tls::None,
        Security::StartTls => Tls::Required(tls_parameters(smtp)?),
        Security::Tls => Tls::Wrapper(tls_parameters(smtp)?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(smtp.timeout));
    if let Some((user, password)) = &smtp.login {
        builder = builder.credentials(Credentials::new(user.clone(), password.0.clone()));
    }
    Ok(builder.build())
}

fn tls_parameters(smtp: &SmtpConfig) -> Result<TlsParameters, String> {
    let mut params = TlsParameters::builder(smtp.host.clone());
    if let Some(path) = &smtp.ca_file {
        let pem =
            std::fs::read(path).map_err(|e| format!("smtp.ca_file {}: {e}", path.display()))?;
        let ca = Certificate::from_pem(&pem).map_err(|e| {
            format!(
                "smtp.ca_file {}: not a PEM certificate ({e})",
                path.display()
            )
        })?;
        params = params.add_root_certificate(ca);
    }
    params
        .build_rustls()
        .map_err(|e| format!("SMTP TLS settings: {e}"))
}

/// The five characters HTML gives a meaning to.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(inline: bool) -> Letter {
        let png = Part {
            name: "ops.png".into(),
            content_type: "image/png",
            bytes: vec![0x89, b'P', b'N', b'G'],
        };
        Letter {
            to: vec!["ops@example.org".parse().expect("address")],
            subject: "Betrieb 週報 <ops>".into(),
            text: "Line one\nA & B".into(),
            attachments: if inline { vec![] } else { vec![png.clone()] },
            inline: inline.then_some(png),
        }
    }

    fn from() -> Mailbox {
        "Reports <reports@example.org>".parse().expect("address")
    }

    #[test]
    fn an_inline_picture_is_related_to_the_html_that_names_its_cid() {
        let raw = String::from_utf8(build(&from(), &letter(true)).expect("built").formatted())
            .expect("utf-8");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("multipart/related"), "{raw}");
        assert!(raw.contains("Content-ID: <dashboard>"), "{raw}");
        assert!(raw.contains("Content-Disposition: inline"), "{raw}");
        assert!(!raw.contains("multipart/mixed"), "{raw}");
        // The subject is encoded (RFC 2047), never raw UTF-8 in the header.
        let subject = raw
            .lines()
            .find(|l| l.starts_with("Subject:"))
            .expect("subject");
        assert!(subject.contains("=?utf-8?"), "{subject}");
    }

    #[test]
    fn attachments_are_mixed_beside_the_text_and_html() {
        let raw = String::from_utf8(build(&from(), &letter(false)).expect("built").formatted())
            .expect("utf-8");
        assert!(raw.contains("multipart/mixed"), "{raw}");
        assert!(
            raw.contains("Content-Disposition: attachment; filename=\"ops.png\""),
            "{raw}"
        );
        assert!(raw.contains("A &amp; B"), "the HTML part is escaped: {raw}");
    }

    #[test]
    fn escape_covers_the_markup_characters() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
