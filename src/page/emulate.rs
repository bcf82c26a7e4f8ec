//! Making a tab look like the requested screen before navigating: viewport and scale, time
//! zone, language, and Grafana's render-key cookie.

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::emulation::{
    ScreenOrientation, ScreenOrientationType, SetDeviceMetricsOverrideParams,
    SetTimezoneOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::network::{
    Headers, SetCookieParams, SetExtraHttpHeadersParams,
};

use crate::error::RenderError;
use crate::request::{RenderCookie, Viewport};

/// Sets the `Accept-Language` of every request of the tab (cleared when `None`, so a reused
/// tab does not keep the previous render's language). Headers with credentials go to the
/// target's origin only: the request gate adds them.
pub(crate) async fn set_language(page: &Page, language: Option<&str>) -> Result<(), RenderError> {
    let mut headers = serde_json::Map::new();
    if let Some(lang) = language {
        headers.insert("Accept-Language".into(), lang.into());
    }
    page.execute(SetExtraHttpHeadersParams::new(Headers::new(
        serde_json::Value::Object(headers),
    )))
    .await
    .map_err(|e| RenderError::cdp("setting Accept-Language", e))?;
    Ok(())
}

/// Sets Grafana's render key as the `renderKey` cookie of the target.
pub(crate) async fn set_render_key(
    page: &Page,
    cookie: &RenderCookie,
    url: &str,
) -> Result<(), RenderError> {
    page.execute(render_key_cookie(cookie, url)?)
        .await
        .map_err(|e| RenderError::cdp("setting the renderKey cookie", e))?;
    Ok(())
}

/// Sets the viewport; the picture is `width × height × scale` pixels.
pub(crate) async fn emulate_viewport(
    page: &Page,
    vp: &Viewport,
    height: u32,
) -> Result<(), RenderError> {
    let orientation = if vp.landscape {
        ScreenOrientation {
            r#type: ScreenOrientationType::LandscapePrimary,
            angle: 90,
        }
    } else {
        ScreenOrientation {
            r#type: ScreenOrientationType::PortraitPrimary,
            angle: 0,
        }
    };
    let params = SetDeviceMetricsOverrideParams::builder()
        .width(vp.width)
        .height(height)
        .device_scale_factor(vp.scale)
        .mobile(false)
        .screen_orientation(orientation)
        .build()
        .map_err(|e| RenderError::cdp("setting the viewport", e))?;
    page.execute(params)
        .await
        .map_err(|e| RenderError::cdp("setting the viewport", e))?;
    Ok(())
}

/// Applies the requested time zone; Chromium refuses unknown names, and then the
/// server default applies (an invalid `timezone` is not an error, as in the Go service).
pub(crate) async fn set_timezone(
    page: &Page,
    requested: Option<&str>,
    default: &str,
) -> Result<(), RenderError> {
    if let Some(tz) = requested
        && page
            .execute(SetTimezoneOverrideParams::new(tz))
            .await
            .is_ok()
    {
        return Ok(());
    }
    if let Some(tz) = requested {
        tracing::debug!(
            timezone = tz,
            "unknown time zone requested; using the server default"
        );
    }
    page.execute(SetTimezoneOverrideParams::new(default))
        .await
        .map_err(|e| RenderError::cdp("setting the time zone", format!("{default}: {e}")))?;
    Ok(())
}

/// The `renderKey` cookie: `HttpOnly` (Grafana's server reads it; no script of the page
/// needs it) and host-only for the target's host, unless Grafana named another domain.
fn render_key_cookie(cookie: &RenderCookie, url: &str) -> Result<SetCookieParams, RenderError> {
    let url = url::Url::parse(url).ok();
    let builder = SetCookieParams::builder()
        .name("renderKey")
        .value(cookie.key.clone())
        .path("/")
        .http_only(true);
    let same_host = url
        .as_ref()
        .and_then(|u| u.host_str())
        .is_some_and(|h| h.trim_matches(['[', ']']) == cookie.domain.trim_matches(['[', ']']));
    let builder = match url.filter(|_| same_host) {
        // With a URL and no domain, Chromium makes the cookie host-only.
        Some(url) => builder.url(url.origin().ascii_serialization()),
        None => builder.domain(cookie_domain(&cookie.domain)),
    };
    builder
        .build()
        .map_err(|e| RenderError::cdp("setting the renderKey cookie", e))
}

/// Cookie domains that are IPv6 literals must be bracketed, as in URLs.
fn cookie_domain(domain: &str) -> String {
    if domain.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{domain}]")
    } else {
        domain.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_cookie_domains_are_bracketed() {
        assert_eq!(cookie_domain("::1"), "[::1]");
        assert_eq!(cookie_domain("grafana"), "grafana");
        assert_eq!(cookie_domain("127.0.0.1"), "127.0.0.1");
    }
}
