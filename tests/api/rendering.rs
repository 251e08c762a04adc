//! What a person sees: every event type's mail, rendered by headless Chromium.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALL_HINT: &str =
    "the rendering test needs Chromium: run `apt-get install -y chromium` (scripts/test does it)";

fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let found = Command::new("which").arg(name).output().ok()?;
            found
                .status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()))
        })
        .unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}

/// Writes the HTML mail of every event file in `dir` to `dir/html`, with `kv-notify preview`.
fn preview(dir: &Path) {
    let output = kv_notify_in(dir, &["preview", ".", "--out", "html"], &[]);
    assert!(output.status.success(), "{}", stdout(&output));
}

/// Renders an HTML file to a PNG, as the docs screenshots are made.
fn screenshot(browser: &Path, html: &Path, png: &Path, profile: &Path) {
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=700,1000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): {INSTALL_HINT}", browser.display()));
    assert!(
        status.status.success() && png.exists(),
        "chromium failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// How much of the picture is ink (far from the light page colours), and how many colours it has.
fn ink_and_colours(png: &Path) -> (f64, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png).expect("png"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    let channels = info.color_type.samples();
    let mut colours = std::collections::HashSet::new();
    let mut ink = 0usize;
    let total = (info.width * info.height) as usize;
    for pixel in pixels[..info.buffer_size()].chunks(channels) {
        let rgb = (pixel[0], pixel[1], pixel[2]);
        colours.insert(rgb);
        if u16::from(rgb.0) + u16::from(rgb.1) + u16::from(rgb.2) < 600 {
            ink += 1;
        }
    }
    (ink as f64 / total as f64, colours.len())
}

#[test]
fn every_event_types_mail_renders_as_a_real_page_in_chromium() {
    let browser = chromium();
    let dir = tempfile::tempdir().expect("temp dir");
    for short_type in ALL_TYPES {
        let event = event_grid(short_type, "db-password", Some(21));
        std::fs::write(
            dir.path().join(format!("{short_type}.json")),
            event.to_string(),
        )
        .expect("write");
    }
    preview(dir.path());

    let pages: Vec<(String, f64, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = ALL_TYPES
            .iter()
            .map(|short_type| {
                let (browser, dir) = (&browser, dir.path());
                scope.spawn(move || {
                    let png = dir.join(format!("{short_type}.png"));
                    screenshot(
                        browser,
                        &dir.join(format!("html/{short_type}.html")),
                        &png,
                        &dir.join(format!("profile-{short_type}")),
                    );
                    let (ink, colours) = ink_and_colours(&png);
                    (short_type.to_string(), ink, colours)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a screenshot"))
            .collect()
    });

    for (short_type, ink, colours) in pages {
        assert!(
            ink > 0.02,
            "{short_type}: the page is nearly blank ({:.1}% ink)",
            ink * 100.0
        );
        assert!(
            colours > 20,
            "{short_type}: only {colours} colours: not a styled mail"
        );
    }
}

/// The page's width as Chromium lays it out in a window `window` pixels wide.
fn laid_out_width(browser: &Path, html: &Path, window: u32, profile: &Path) -> u32 {
    let page = std::fs::read_to_string(html).expect("html");
    let measured = html.with_extension("measured.html");
    // Headless Chromium's windows are at least 500 px wide: the page is laid out in a box of
    // the phone's width instead, and the box's content width measured.
    let probe = format!(
        "<script>const phone = document.createElement('div'); \
         phone.style.width = '{window}px'; \
         while (document.body.firstChild) phone.appendChild(document.body.firstChild); \
         document.body.appendChild(phone); \
         document.body.setAttribute('data-width', String(phone.scrollWidth));</script>"
    );
    std::fs::write(
        &measured,
        page.replace("</body>", &format!("{probe}</body>")),
    )
    .expect("write");
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg("--window-size=800,900")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", measured.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): {INSTALL_HINT}", browser.display()));
    let dom = String::from_utf8_lossy(&output.stdout);
    dom.split("data-width=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|width| width.parse().ok())
        .unwrap_or_else(|| panic!("no width measured: {dom}"))
}

#[test]
fn on_a_390_pixel_phone_the_mail_fits_without_scrolling_sideways() {
    let browser = chromium();
    let dir = tempfile::tempdir().expect("temp dir");
    let event = event_grid("CertificateNearExpiry", "api-contoso-com", Some(21));
    std::fs::write(dir.path().join("event.json"), event.to_string()).expect("write");
    preview(dir.path());
    let html = dir.path().join("html/event.html");

    let width = laid_out_width(&browser, &html, 390, &dir.path().join("profile"));

    assert!(width <= 390, "laid out {width} px wide in a 390 px window");
    let page = std::fs::read_to_string(&html).expect("html");
    // `width="600"` or `width:600px`; a `max-width` (or `min-`, `border-`) is another thing.
    let chunks: Vec<&str> = page.split("width").collect();
    for pair in chunks.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        if before.ends_with('-') {
            continue;
        }
        let number: String = after
            .trim_start_matches(['=', ':', '"', ' '])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(pixels) = number.parse::<u32>() {
            let at = &after[..40.min(after.len())];
            assert!(pixels <= 390, "a fixed width of {pixels} px: width{at}");
        }
    }
}
