//! The HTML page: the template with its style, its script and the data
//! put in place. Everything is inline (no file, font or script is fetched
//! when the page opens), and a Content-Security-Policy in the page forbids
//! fetching anything at all.

use serde_json::Value;

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Where the template takes each part.
const STYLE_SLOT: &str = "/*style*/";
const SCRIPT_SLOT: &str = "/*script*/";
const DATA_SLOT: &str = "/*data*/";

/// The page showing `data` (see `data.rs` for its fields).
pub fn render(data: &Value) -> String {
    let json = script_safe_json(data);
    let mut page = String::with_capacity(TEMPLATE.len() + STYLE.len() + SCRIPT.len() + json.len());
    // Each slot is filled once, in the order the template holds them, so no
    // part is ever searched for another's slot.
    let mut rest = TEMPLATE;
    for (slot, part) in [(STYLE_SLOT, STYLE), (DATA_SLOT, json.as_str()), (SCRIPT_SLOT, SCRIPT)] {
        let (before, after) = rest.split_once(slot).unwrap_or((rest, ""));
        page.push_str(before);
        page.push_str(part);
        rest = after;
    }
    page.push_str(rest);
    page
}

/// `data` as JSON that can sit inside a `<script>` element: every `<` is
/// written `\u003c` (the same string to a JSON parser), so no `</script>`
/// or `<!--` in the data can end or change the element.
fn script_safe_json(data: &Value) -> String {
    data.to_string().replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_template_holds_each_slot_once_in_order() {
        let at = |slot| {
            assert_eq!(TEMPLATE.matches(slot).count(), 1, "{slot}");
            TEMPLATE.find(slot).unwrap()
        };
        assert!(at(STYLE_SLOT) < at(DATA_SLOT) && at(DATA_SLOT) < at(SCRIPT_SLOT));
        for part in [STYLE, SCRIPT] {
            assert!(![STYLE_SLOT, DATA_SLOT, SCRIPT_SLOT].iter().any(|s| part.contains(s)));
            assert!(!part.to_ascii_lowercase().contains("</script"), "an asset must not close its element");
        }
    }

    #[test]
    fn data_cannot_close_the_script_element_and_reads_back_the_same() {
        let data = json!({"attributes": {"gen_ai.input.messages": "</script><script>alert(1)</script><!--"}});
        let page = render(&data);
        assert_eq!(page.matches("</script>").count(), 2, "only the page's own two script elements close");
        assert!(!page.contains("<!--"));
        let start = page.find(r#"<script type="application/json" id="report-data">"#).unwrap();
        let body = &page[start..];
        let body = &body[body.find('>').unwrap() + 1..body.find("</script>").unwrap()];
        assert_eq!(serde_json::from_str::<Value>(body).unwrap(), data);
    }

    #[test]
    fn the_page_fetches_nothing() {
        // The one address in the page names SVG's namespace; nothing is fetched from it.
        let page = render(&json!({})).replace("\"http://www.w3.org/2000/svg\"", "");
        assert!(page.contains("default-src 'none'"));
        for fetch in ["http:", "https:", "@import", "url(", "src=", "href="] {
            assert!(!page.contains(fetch), "{fetch} in the page");
        }
    }
}
