/* A small Markdown renderer that only ever builds DOM nodes and sets textContent.
 *
 * Model text never reaches innerHTML: `<img src=x onerror=...>` in an answer is shown as those
 * characters. Supported: paragraphs, headings, ordered and unordered lists, block quotes, rules,
 * fenced code blocks, inline code, bold, italic, and links (http and https only).
 */
"use strict";

const CortexMarkdown = (() => {
  const MAX_DEPTH = 8;
  const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+.#-]*)\s*$/;
  const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const BULLET = /^ {0,3}[-*+]\s+(.*)$/;
  const ORDERED = /^ {0,3}(\d{1,9})[.)]\s+(.*)$/;
  const QUOTE = /^ {0,3}>\s?(.*)$/;
  const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;

  /** A link target we are willing to follow: absolute http(s) only. */
  function safeHref(raw) {
    try {
      const url = new URL(raw);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (err) {
      return null;
    }
  }

  function link(text, href, depth) {
    const a = document.createElement("a");
    a.href = href;
    a.rel = "noopener noreferrer nofollow";
    a.target = "_blank";
    appendInline(a, text, depth + 1);
    return a;
  }

  // Earliest match wins; ties go to the pattern listed first.
  const INLINE = [
    { re: /(`+)([\s\S]+?)\1(?!`)/, make: (m) => wrapText("code", m[2].replace(/^ (.*) $/, "$1")) },
    { re: /\[([^\]\n]{1,500})\]\(([^()\s]{1,2000})\)/, make: (m, d) => {
      const href = safeHref(m[2]);
      return href ? link(m[1], href, d) : document.createTextNode(m[0]);
    } },
    { re: /\bhttps?:\/\/[^\s<>()"'`]+[^\s<>()"'`.,;:!?]/, make: (m) => {
      const href = safeHref(m[0]);
      return href ? link(m[0], href, MAX_DEPTH) : document.createTextNode(m[0]);
    } },
    { re: /\*\*(?=\S)([\s\S]*?\S)\*\*|__(?=\S)([\s\S]*?\S)__(?!\w)/, make: (m, d) => wrap("strong", m[1] || m[2], d) },
    { re: /\*(?=[^\s*])([^*]*?[^\s*])\*|(?<!\w)_(?=[^\s_])([^_]*?[^\s_])_(?!\w)/, make: (m, d) => wrap("em", m[1] || m[2], d) },
  ];

  function wrapText(tag, text) {
    const node = document.createElement(tag);
    node.textContent = text;
    return node;
  }

  function wrap(tag, text, depth) {
    const node = document.createElement(tag);
    appendInline(node, text, depth + 1);
    return node;
  }

  /** Append `text` to `parent` with inline formatting; anything unrecognised stays text. */
  function appendInline(parent, text, depth = 0) {
    if (depth >= MAX_DEPTH) {
      parent.append(document.createTextNode(text));
      return;
    }
    let rest = text;
    while (rest) {
      let best = null;
      for (const rule of INLINE) {
        const m = rule.re.exec(rest);
        if (m && (best === null || m.index < best.m.index)) best = { m, rule };
      }
      if (!best) {
        appendLines(parent, rest);
        return;
      }
      if (best.m.index > 0) appendLines(parent, rest.slice(0, best.m.index));
      parent.append(best.rule.make(best.m, depth));
      rest = rest.slice(best.m.index + best.m[0].length);
    }
  }

  /** Text with its line breaks kept as <br>. */
  function appendLines(parent, text) {
    text.split("\n").forEach((line, i) => {
      if (i) parent.append(document.createElement("br"));
      if (line) parent.append(document.createTextNode(line));
    });
  }

  function list(lines, start, ordered) {
    const pattern = ordered ? ORDERED : BULLET;
    const node = document.createElement(ordered ? "ol" : "ul");
    const first = lines[start].match(pattern);
    if (ordered && first[1] !== "1") node.start = Math.min(Number(first[1]), 1e9);
    let i = start;
    let item = null;
    let text = [];
    const flush = () => {
      if (item) appendInline(item, text.join("\n"));
    };
    while (i < lines.length) {
      const m = lines[i].match(pattern);
      if (m) {
        flush();
        item = document.createElement("li");
        node.append(item);
        text = [ordered ? m[2] : m[1]];
      } else if (/^\s{2,}\S/.test(lines[i]) && item) {
        text.push(lines[i].trim()); // a continuation (or nested item, shown flat)
      } else break;
      i += 1;
    }
    flush();
    return [node, i];
  }

  function blocks(parent, lines, depth) {
    let i = 0;
    let para = [];
    const flushPara = () => {
      if (!para.length) return;
      const p = document.createElement("p");
      appendInline(p, para.join("\n"));
      parent.append(p);
      para = [];
    };
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if ((m = line.match(FENCE))) {
        flushPara();
        const fence = m[1];
        const body = [];
        i += 1;
        while (i < lines.length && !(lines[i].trim().startsWith(fence[0].repeat(fence.length)) && lines[i].trim().replace(new RegExp("^\\" + fence[0] + "+"), "") === "")) {
          body.push(lines[i]);
          i += 1;
        }
        i += 1; // the closing fence (or the end of an unfinished, still streaming block)
        const pre = document.createElement("pre");
        const code = document.createElement("code");
        if (m[2]) {
          code.className = "lang-" + m[2].replace(/[^\w-]/g, "");
          pre.dataset.lang = m[2];
        }
        code.textContent = body.join("\n");
        pre.append(code);
        parent.append(pre);
      } else if (!line.trim()) {
        flushPara();
        i += 1;
      } else if ((m = line.match(HEADING))) {
        flushPara();
        const h = document.createElement("h" + Math.min(m[1].length + 2, 6));
        h.className = "md-h" + m[1].length;
        appendInline(h, m[2]);
        parent.append(h);
        i += 1;
      } else if (RULE.test(line)) {
        flushPara();
        parent.append(document.createElement("hr"));
        i += 1;
      } else if (BULLET.test(line) || ORDERED.test(line)) {
        flushPara();
        const [node, next] = list(lines, i, !BULLET.test(line));
        parent.append(node);
        i = next;
      } else if (QUOTE.test(line) && depth < MAX_DEPTH) {
        flushPara();
        const quoted = [];
        while (i < lines.length && (m = lines[i].match(QUOTE))) {
          quoted.push(m[1]);
          i += 1;
        }
        const q = document.createElement("blockquote");
        blocks(q, quoted, depth + 1);
        parent.append(q);
      } else {
        para.push(line);
        i += 1;
      }
    }
    flushPara();
  }

  /** Render Markdown `text` into a fresh DocumentFragment (text nodes and safe elements only). */
  function render(text) {
    const fragment = document.createDocumentFragment();
    blocks(fragment, String(text || "").replace(/\r\n?/g, "\n").split("\n"), 0);
    return fragment;
  }

  return { render, safeHref };
})();
