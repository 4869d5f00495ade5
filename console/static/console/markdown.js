/* Assistant Markdown: `marked` turns it into HTML, DOMPurify cleans that into DOM nodes.
 *
 * Nothing reaches the DOM without DOMPurify (an allow-list of tags and attributes, returned as a
 * DocumentFragment: this script never assigns markup). Before that, the renderer already refuses what a model
 * might slip in: raw HTML in the answer is shown as its text (`<img src=x onerror=...>` stays
 * those characters), images are shown as their text (nothing is fetched), and links are kept only
 * for absolute http and https targets, opening in a new tab with rel=noopener.
 * Needs vendor/marked/marked.umd.js and vendor/dompurify/purify.min.js loaded first.
 */
"use strict";

const CortexMarkdown = (() => {
  const REL = "noopener noreferrer nofollow";
  const ALLOWED_TAGS = [
    "a", "blockquote", "br", "code", "del", "em", "h3", "h4", "h5", "h6", "hr", "li", "ol",
    "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
  ];
  const ALLOWED_ATTR = ["href", "title", "class", "start", "align"];
  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  function escape(text) {
    return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
  }

  /** A link target we are willing to follow: absolute http(s) only, else null. */
  function safeHref(raw) {
    try {
      const url = new URL(raw);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (err) {
      return null;
    }
  }

  const parser = new marked.Marked({
    gfm: true,
    breaks: true, // a line break in an answer stays one
    renderer: {
      // Raw HTML (block or inline) is text, never markup.
      html({ text }) {
        return escape(text);
      },
      text(token) {
        return token.tokens ? this.parser.parseInline(token.tokens) : escape(token.text);
      },
      // Chat headings sit below the page's own h1/h2.
      heading({ tokens, depth }) {
        const level = Math.min(depth + 2, 6);
        return `<h${level} class="md-h${depth}">${this.parser.parseInline(tokens)}</h${level}>\n`;
      },
      code({ text, lang }) {
        const name = (lang || "").match(/^[\w+.#-]{1,40}/);
        const cls = name ? ` class="lang-${escape(name[0].replace(/[^\w-]/g, ""))}"` : "";
        return `<pre><code${cls}>${escape(text.replace(/\n$/, ""))}</code></pre>\n`;
      },
      link({ href, title, tokens, raw }) {
        const target = safeHref(href);
        if (!target) return escape(raw);
        const titled = title ? ` title="${escape(title)}"` : "";
        return `<a href="${escape(target)}"${titled}>${this.parser.parseInline(tokens)}</a>`;
      },
      image({ raw }) {
        return escape(raw);
      },
    },
  });

  // Whatever the renderer let through, links leave only for http(s), in a new tab.
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.nodeName !== "A") return;
    const target = safeHref(node.getAttribute("href") || "");
    if (!target) {
      node.removeAttribute("href"); // an anchor without a target is plain text
      return;
    }
    node.setAttribute("href", target);
    node.setAttribute("rel", REL);
    node.setAttribute("target", "_blank");
  });

  /** Render Markdown `text` into a fresh, sanitised DocumentFragment. */
  function render(text) {
    const html = parser.parse(String(text || ""), { async: false });
    return DOMPurify.sanitize(html, {
      ALLOWED_TAGS,
      ALLOWED_ATTR,
      ALLOW_DATA_ATTR: false,
      ALLOW_ARIA_ATTR: false,
      RETURN_DOM_FRAGMENT: true,
    });
  }

  return { render };
})();
