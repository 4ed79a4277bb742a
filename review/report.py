"""One self-contained HTML page: the conversations that need attention, then each transcript.

No script, no stylesheet or font from elsewhere: it opens from a file, offline, in any browser,
and can be attached to a ticket. Each conversation's parts sit between review/files.py's markers.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from review import files
from review.conversation import Conversation, Finding
from review.privacy import Masker
from review.render import reasons_summary, transcript, when

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;color:#1d2430;padding:0 1rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2.5rem;border-bottom:1px solid #d0d6de;padding-bottom:.3rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid #e6e9ee}
th{background:#f3f5f8;font-weight:600}code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}
.reasons span{display:inline-block;background:#fff2d6;border:1px solid #f0c36d;border-radius:.6rem;padding:0 .45rem;margin:0 .2rem .2rem 0;font-size:.85em}
.findings{margin:.4rem 0 1rem;padding-left:1.2rem;color:#6b4b00}
td.when{white-space:nowrap;color:#5c6675;font-size:.85em}td.kind{font-weight:600;white-space:nowrap}
tr.user td.kind{color:#1b5fb4}tr.bot td.kind{color:#2f7d32}tr.session td{background:#f3f5f8}
.note{color:#5c6675;font-size:.85em}footer{margin-top:3rem;color:#5c6675;font-size:.85em}
"""


def anchor(conversation: Conversation) -> str:
    return f"c-{files.key(conversation.sender)}"


def _row(conversation: Conversation, found: Sequence[Finding], mask: Masker) -> str:
    reasons = " ".join(f"<span>{escape(part)}</span>" for part in reasons_summary(list(found)).split(", ") if part)
    return (f"{files.begin('html', conversation.sender)}<tr><td class=\"when\">{escape(when(conversation.last))}</td>"
            f"<td><a href=\"#{anchor(conversation)}\"><code>{escape(mask(conversation.sender))}</code></a></td>"
            f"<td>{len(conversation.user_messages())}</td><td>{escape(', '.join(conversation.channels) or '-')}</td>"
            f"<td class=\"reasons\">{reasons}</td></tr>{files.end('html', conversation.sender)}")


def _section(conversation: Conversation, found: Sequence[Finding], mask: Masker) -> str:
    items = "".join(f"<li>{escape(when(f.timestamp))} <strong>{escape(f.reason.value)}</strong>: "
                    f"{escape(mask(f.detail))}</li>" for f in found)
    rows = []
    for entry in transcript(conversation, mask):
        text = escape(entry.text)
        note = f" <span class=\"note\">({escape(entry.note)})</span>" if entry.note else ""
        rows.append(f"<tr class=\"{entry.kind}\"><td class=\"when\">{escape(when(entry.timestamp))}</td>"
                    f"<td class=\"kind\">{entry.kind}</td><td>{text}{note}</td></tr>")
    return (f"{files.begin('html', conversation.sender)}<section id=\"{anchor(conversation)}\" class=\"conversation\">"
            f"<h2>Conversation <code>{escape(mask(conversation.sender))}</code></h2>"
            f"<p class=\"note\">{escape(when(conversation.first))} to {escape(when(conversation.last))}</p>"
            f"<ul class=\"findings\">{items}</ul>"
            f"<table class=\"transcript\"><thead><tr><th>when (UTC)</th><th>who</th><th>what</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></section>{files.end('html', conversation.sender)}")


def html_report(items: Sequence[tuple[Conversation, Sequence[Finding]]], mask: Masker, title: str) -> str:
    rows = "\n".join(_row(c, f, mask) for c, f in items)
    sections = "\n".join(_section(c, f, mask) for c, f in items)
    empty = "" if items else "<p id=\"empty\">No conversation needs attention for these filters.</p>"
    masked = "unmasked: personal data is shown" if mask.unmasked else \
        "personal data (emails, phone numbers, order ids, card numbers) is masked"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="note">Newest first; {escape(masked)}. Each conversation's transcript follows the list.</p>
{empty}
<table id="conversations"><thead><tr><th>last active (UTC)</th><th>conversation</th><th>user messages</th><th>channels</th><th>why</th></tr></thead>
<tbody>
{rows}
</tbody></table>
{sections}
<footer>Made by <code>python -m review report</code>. Correct intents with <code>export-nlu</code>, keep a
conversation as a test with <code>export-story</code> (docs/review.md).</footer>
</body>
</html>
"""
