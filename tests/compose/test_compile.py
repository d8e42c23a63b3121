"""Compiling issue 011 and the per-recipient slots, against the real MJML and premailer."""

from __future__ import annotations

import html
import re
import socket
from pathlib import Path

import pytest
from PIL import Image

from gigo_mail.compose.compile import GMAIL_CLIP_BYTES, compile_issue
from gigo_mail.compose.issue import find_issue, list_issues
from gigo_mail.compose.slots import escape_html
from gigo_mail.config import load_config
from gigo_mail.errors import CompileError, ConfigError, IssueError, IssueNotFound, TemplateError
from support import DATA, make_newsletter, write_image_issue, write_issue

SEED = (DATA / "seed-newsletter-011.md").read_text(encoding="utf-8")


def seed_links() -> set[str]:
    """Every link target of the seed newsletter, with the copy's broken line joined."""
    without_images = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", SEED)
    urls = {u.strip() for u in re.findall(r"\]\(\s*([^)\s]+)\s*\)", without_images)}
    assert len(urls) == 12  # 4 social, gigo.dev, 7 sources
    # The seed's only http: link was upgraded to https in issues/011.md (the build flags http: links).
    return {"https://gigo.dev" if u == "http://gigo.dev" else u for u in urls}


def seed_paragraphs() -> list[str]:
    """The prose paragraphs of the seed, markup removed, whitespace collapsed."""
    out = []
    for block in SEED.split("\n\n"):
        block = block.strip()
        if not block or block.startswith(("#", "!", "[", "Discord", "Sources")) or "](" in block:
            continue
        text = re.sub(r"\*+", "", block)
        out.append(" ".join(text.split()))
    return out


@pytest.fixture(scope="module")
def compiled011(tmp_path_factory: pytest.TempPathFactory):
    root = make_newsletter(tmp_path_factory.mktemp("news"))
    config = load_config(root)
    return compile_issue(config, find_issue(root, "011"))


def test_issue_refs_resolve_to_the_same_issue(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    keys = {find_issue(root, ref).path.resolve() for ref in ("011", "11", "issues/011.md",
                                                           str(root / "issues" / "011.md"))}
    assert keys == {(root / "issues" / "011.md").resolve()}
    assert [i.key for i in list_issues(root)] == ["011"]


def test_unknown_issue_lists_existing(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    with pytest.raises(IssueNotFound, match=r"no issue '42'.*issues that exist: 011"):
        find_issue(root, "42")


def test_every_seed_link_is_in_html_and_text(compiled011) -> None:
    page = html.unescape(compiled011.preview_html())
    text = compiled011.preview_text()
    missing_html = {u for u in seed_links() if f'href="{u}"' not in page}
    missing_text = {u for u in seed_links() if u not in text}
    assert not missing_html and not missing_text, (missing_html, missing_text)
    assert "mailto:contact@gigo.dev" in page and "contact@gigo.dev" in text


def test_every_seed_paragraph_is_in_text_and_html(compiled011) -> None:
    text = " ".join(re.sub(r"[_*]", "", compiled011.preview_text()).split())
    page = " ".join(re.sub(r"<[^>]+>", "", html.unescape(compiled011.preview_html())).split())
    paragraphs = seed_paragraphs()
    assert len(paragraphs) > 20
    for para in paragraphs:
        assert para in text, para[:60]
        assert para in page, para[:60]


def test_headings_emphasis_and_image_come_through(compiled011) -> None:
    page = compiled011.preview_html()
    for heading in ("Early iterations — The foundation is set", "Who is responsible for this breakthrough?",
                    "Limitations of OpenAI’s Sora model", "Impact and Closing"):
        assert re.search(rf"<h2[^>]*>{re.escape(heading)}</h2>", page), heading
    # the body's `##` title is the email's one h1: its outline starts there
    assert re.findall(r"<h1[^>]*>([^<]*)</h1>", page) == ["Text-to-video takes another massive leap forward"]
    assert re.search(r"<em[^>]*>discriminator</em>", page)
    assert re.search(r"<strong[^>]*>Spatial Details and Consistency</strong>", page)
    hero = re.search(r'<img[^>]*src="https://cdn-images-1.medium.com/max/3052/1\*CAz948ypFNhmHV-k1pxJag.png"[^>]*>',
                     page)
    assert hero and 'alt="GIGO Tech Trends Newsletter 011"' in hero.group(0)
    assert "Newsletter 011" in page and "GIGO Tech Trends" in page


def test_content_carries_inline_styles(compiled011) -> None:
    page = compiled011.preview_html()
    for tag in ("h1", "h2", "p", "a"):
        tags = re.findall(rf"<{tag}\b[^>]*>", page)
        assert tags, tag
        assert all('style="' in t for t in tags), (tag, [t for t in tags if 'style="' not in t][:3])


def test_no_remote_stylesheets_or_fonts_and_responsive(compiled011) -> None:
    page = compiled011.preview_html()
    assert "<link" not in page.lower()
    assert "fonts.googleapis" not in page and "@import" not in page
    assert "@media only screen and (max-width: 480px)" in page or "max-width:480px" in page
    assert "prefers-color-scheme: dark" in page
    assert 'name="color-scheme" content="light dark"' in page
    assert 'name="viewport"' in page
    assert page.startswith("<!doctype html>")  # no quirks mode


def test_size_under_gmail_limit_and_report(compiled011) -> None:
    report = compiled011.report
    assert 0 < report.html_bytes < GMAIL_CLIP_BYTES
    assert len(compiled011.preview_html().encode()) < GMAIL_CLIP_BYTES
    assert report.errors == [] and report.warnings == []
    assert report.compile_ms > 0


def test_preheader_hidden_and_present(compiled011) -> None:
    page = compiled011.preview_html()
    match = re.search(r'<div class="preheader"[^>]*>([^<]+)</div>', page)
    assert match and "Sora" in match.group(1)
    assert "display:none" in match.group(0).replace(" ", "")


def test_preheader_is_padded_without_colour_tricks(compiled011, tmp_path: Path) -> None:
    """Zero-width non-joiners and no-break spaces after the preheader keep inbox previews
    from running on into the masthead; no colour, size or opacity games that spam filters
    read as hidden text."""
    match = re.search(r'<div class="preheader"([^>]*)>([^<]*)</div>', compiled011.preview_html())
    assert match
    style, text = match.group(1).lower(), html.unescape(match.group(2))
    assert text.startswith(compiled011.issue.preheader)
    padding = text.removeprefix(compiled011.issue.preheader)
    assert len(padding) >= 200 and set(padding) == {"\u200c", "\xa0"}
    assert not re.search(r"color|font-size|opacity|line-height", style)
    root = make_newsletter(tmp_path)
    write_issue(root, "012.md", "subject: no preheader here", "Body.\n")
    bare = compile_issue(load_config(root), find_issue(root, "12")).preview_html()
    assert "\u200c" not in bare and "&#8204;" not in bare and "&zwnj;" not in bare


def test_hero_keeps_its_pixel_width(compiled011) -> None:
    """premailer used to rewrite MJML's width="600" to width="100%", which Outlook for
    Windows draws at the file's own 3,052 px."""
    hero = re.search(r"<img\b[^>]*>", compiled011.html.source)
    assert hero and "cdn-images-1.medium.com" in hero.group(0)
    assert 'width="600"' in hero.group(0)
    assert "height=" not in hero.group(0)  # a remote file of unknown proportions
    assert any("remote, size unknown: 600 px wide" in line for line in compiled011.report.images)


def test_every_image_gets_a_pixel_size_within_its_column(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    folder = root / "issues" / "012"
    folder.mkdir()
    Image.new("RGB", (3052, 1200)).save(folder / "wide.png")
    Image.new("RGB", (120, 80)).save(folder / "small.png")
    front = ("subject: s\npreheader: p\nhero:\n  src: https://cdn.example.org/hero.png\n  alt: Hero\n"
             "  width: 1200\n  height: 400")
    write_issue(root, "012/index.md", front, "![wide](wide.png)\n\n![small](small.png)\n\n"
                "![remote](https://cdn.example.org/chart.png)\n\n- ![listed](wide.png)\n")
    compiled = compile_issue(load_config(root), find_issue(root, "12"))
    sizes = {}
    for tag in re.findall(r"<img\b[^>]*>", compiled.html.source):
        width, height = re.search(r'\swidth="([^"]*)"', tag), re.search(r'\sheight="([^"]*)"', tag)
        alt = re.search(r'alt="([^"]*)"', tag)
        sizes[alt and alt.group(1)] = (width and width.group(1), height and height.group(1))
    assert sizes == {
        "Hero": ("600", "200"),  # the column, in the proportions the front matter gives
        "wide": ("536", "211"),  # 600 less the body's 2 × 32 px padding
        "small": ("120", "80"),  # never wider than the file
        "remote": ("536", None),
        "listed": ("512", "201"),  # a list's 24-px indent too
    }
    assert any(line.startswith("https://cdn.example.org/chart.png: remote, size unknown: 536 px wide")
               for line in compiled.report.images)


def test_lang_comes_from_the_config(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    config = root / "gigo-mail.toml"
    text = config.read_text(encoding="utf-8")
    assert 'lang = "en"' in text
    config.write_text(text.replace('lang = "en"', 'lang = "pt-BR"'), encoding="utf-8")
    compiled = compile_issue(load_config(root), find_issue(root, "11"))
    assert re.search(r'<html\b[^>]*\slang="pt-BR"', compiled.html.source)
    config.write_text(text.replace('lang = "en"', 'lang = "Portuguese"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"lang 'Portuguese' is not a language tag"):
        load_config(root)


def test_a_right_to_left_issue_is_laid_out_right_to_left(tmp_path: Path) -> None:
    """An issue in Arabic (front matter overriding the newsletter's English): dir="rtl" on the page
    and on the wrapper Gmail keeps, every column right to left, the body text aligned right."""
    root = make_newsletter(tmp_path)
    body = "## مرحبا\n\nفقرة أولى.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    write_issue(root, "050.md", "subject: نشرة\nlang: ar", body)
    source = compile_issue(load_config(root), find_issue(root, "050")).html.source
    assert re.search(r'<html\b[^>]*\slang="ar"[^>]*\sdir="rtl"', source)
    assert re.search(r'<div\b[^>]*role="article"[^>]*\sdir="rtl"', source)
    assert "direction:ltr" not in source.replace(" ", "") and "direction:rtl" in source.replace(" ", "")
    body_cells = re.findall(r'<td align="(\w+)" class="body-text"', source)
    assert body_cells and set(body_cells) == {"right"}  # the footer stays centred
    english = compile_issue(load_config(root), find_issue(root, "11")).html.source
    assert re.search(r'<html\b[^>]*\sdir="ltr"', english) and "direction:rtl" not in english.replace(" ", "")
    assert set(re.findall(r'<td align="(\w+)" class="body-text"', english)) == {"left"}


def test_a_front_matter_lang_that_is_not_a_language_tag_names_the_file(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    write_issue(root, "051.md", "subject: s\nlang: Arabic please", "x\n")
    with pytest.raises(IssueError, match=r"051\.md:3: front matter lang 'Arabic please' is not a language"):
        compile_issue(load_config(root), find_issue(root, "051"))


def test_text_part_keeps_full_stops_out_of_urls(compiled011) -> None:
    text = compiled011.preview_text()
    urls = re.findall(r"https?://[^\s<>()]+", text)
    assert len(urls) > 10
    assert [url for url in urls if url[-1] in ".,;:!?"] == []
    assert "subscribed at <https://gigo.dev>." in text


def test_compile_with_sockets_blocked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_newsletter(tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted during compile")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    compiled = compile_issue(load_config(root), find_issue(root, "011"))
    assert "Sora" in compiled.preview_html()


PERSONAL = """
Hello {{ subscriber.name }}, from {{ subscriber.city | default("somewhere") }}.

[Your profile](https://example.org/u?name={{ subscriber.name | urlencode }}&amp;c=1)

Shout: {{ subscriber.name | upper }}
"""


def test_slots_survive_compile_and_fill_per_subscriber(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    write_issue(root, "020.md", "subject: Hi {{ subscriber.name }}\npreheader: p", PERSONAL)
    compiled = compile_issue(load_config(root), find_issue(root, "20"))
    assert "gigo:slot:" in compiled.html.source  # still placeholders after MJML and premailer
    assert compiled.required_columns == {"city"}
    raw = compiled.values({"city": ""}, 'Zoë <&> "Q"', "z@example.org", "https://u.example/x?t=1&e=2")
    page = compiled.html.fill(escape_html(raw))
    assert "Hello Zoë &lt;&amp;&gt; &quot;Q&quot;, from somewhere." in page
    assert 'href="https://example.org/u?name=Zo%C3%AB%20%3C%26%3E%20%22Q%22&amp;c=1"' in page
    assert 'href="https://u.example/x?t=1&amp;e=2"' in page  # the unsubscribe link, escaped once
    assert "ZOË &lt;&amp;&gt; &quot;Q&quot;" in page
    assert "gigo:slot:" not in page
    text = compiled.text.fill(raw)
    assert 'Hello Zoë <&> "Q", from somewhere.' in text
    assert "Unsubscribe: https://u.example/x?t=1&e=2" in text
    assert compiled.subject.fill(raw) == 'Hi Zoë <&> "Q"'


def test_if_on_a_subscriber_value_is_a_clear_error(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    write_issue(root, "021.md", "subject: s", "{% if subscriber.name %}x{% endif %}\n")
    with pytest.raises(TemplateError, match=r"cannot be tested with \{% if %\}"):
        compile_issue(load_config(root), find_issue(root, "21"))


def test_missing_subject_names_file_and_field(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    write_issue(root, "022.md", "title: t", "body\n")
    with pytest.raises(IssueError, match=r"issues/022.md: front matter has no 'subject'"):
        compile_issue(load_config(root), find_issue(root, "22"))


def test_jinja_error_in_body_gives_file_and_line(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    write_issue(root, "023.md", "subject: s", "line one\n\nline three {{ nope }}\n")
    with pytest.raises(TemplateError, match=r"issues/023.md:6: 'nope' is undefined"):
        compile_issue(load_config(root), find_issue(root, "23"))


def test_jinja_error_in_template_gives_template_file_and_line(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    (root / "templates" / "gigo" / "email.mjml.j2").write_text(
        '{% extends "default/email.mjml.j2" %}\n{% block header %}\n{{ missing_thing }}\n{% endblock %}\n')
    with pytest.raises(TemplateError, match=r"gigo/email.mjml.j2:3: 'missing_thing' is undefined"):
        compile_issue(load_config(root), find_issue(root, "11"))


def test_invalid_mjml_is_a_compile_error(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    (root / "templates" / "gigo" / "email.mjml.j2").write_text("<mjml><mj-body><mj-section>")
    with pytest.raises(CompileError, match=r"invalid MJML"):
        compile_issue(load_config(root), find_issue(root, "11"))


def test_folder_issue_embeds_relative_images(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    folder = root / "issues" / "012"
    folder.mkdir()
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a1a3c2d20000000049454e44ae426082")
    (folder / "chart.png").write_bytes(png)
    write_issue(root, "012/index.md", "subject: s\npreheader: p", "![A chart](chart.png)\n")
    compiled = compile_issue(load_config(root), find_issue(root, "12"))
    assert len(compiled.images) == 1 and compiled.images[0].data == png
    assert f'src="cid:{compiled.images[0].cid}"' in compiled.html.source
    assert "data:image/png;base64," in compiled.preview_html()
    assert "embedded" in compiled.report.images[0]


def test_missing_image_and_warnings(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    write_issue(root, "013.md", "subject: s", "![](http://example.org/x.png) [old](http://example.org)\n")
    compiled = compile_issue(load_config(root), find_issue(root, "13"))
    warnings = " | ".join(compiled.report.warnings)
    assert "image without alt text" in warnings
    assert "insecure http: link: http://example.org" in warnings
    assert "no 'preheader'" in warnings
    write_issue(root, "014.md", "subject: s", "![x](nope.png)\n")
    with pytest.raises(CompileError, match=r"image 'nope.png' not found"):
        compile_issue(load_config(root), find_issue(root, "14"))


def test_front_matter_overrides_config_and_picks_a_template(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    plain = root / "templates" / "plain"
    plain.mkdir()
    (plain / "email.mjml.j2").write_text(
        "<mjml><mj-body><mj-section><mj-column><mj-text><p>PLAIN {{ newsletter.name }}</p>{{ body }}"
        "<a href=\"{{ unsubscribe_url }}\">u</a></mj-text></mj-column></mj-section></mj-body></mjml>")
    (plain / "email.txt.j2").write_text("PLAIN TEXT {{ newsletter.name }}\n{{ body }}")
    write_issue(root, "050.md", 'subject: s\npreheader: p\ntemplate: plain\nname: "Special Edition"\n'
                "from: Guest <guest@example.net>", "Body here.\n")
    compiled = compile_issue(load_config(root), find_issue(root, "50"))
    assert "PLAIN Special Edition" in compiled.preview_html()
    assert compiled.preview_text().startswith("PLAIN TEXT Special Edition")
    assert compiled.config.newsletter.from_addr == "Guest <guest@example.net>"
    assert load_config(root).newsletter.name == "GIGO Tech Trends"  # the override is per issue


def test_unknown_template_is_a_clear_error(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    write_issue(root, "051.md", "subject: s\ntemplate: nope", "x\n")
    with pytest.raises(TemplateError, match=r"template 'nope/email.mjml.j2' not found"):
        compile_issue(load_config(root), find_issue(root, "51"))


@pytest.mark.parametrize(("setting", "expected"), [
    ('unsubscribe_url = "http://gigo.dev/u?t={token}"', "is not https"),
    ('unsubscribe_url = "https://gigo.dev/unsubscribe"', "has no {token}"),
    ('unsubscribe_url = ""', "has no 'unsubscribe_url'"),
    ('postal_address = ""', "has no 'postal_address'"),
])
def test_build_checks_unsubscribe_and_postal_address(tmp_path: Path, setting: str, expected: str) -> None:
    root = make_newsletter(tmp_path)
    config = root / "gigo-mail.toml"
    text = config.read_text()
    line = next(x for x in text.splitlines() if x.startswith(setting.split(" ")[0] + " "))
    config.write_text(text.replace(line, setting))
    compiled = compile_issue(load_config(root), find_issue(root, "11"))
    assert any(expected in w for w in compiled.report.warnings), compiled.report.warnings


def test_linked_images_point_at_the_site_and_still_preview(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    write_image_issue(root, "015", images="link")
    compiled = compile_issue(load_config(root), find_issue(root, "15"))
    assert 'src="https://gigo.dev/issues/015/dot.gif"' in compiled.html.source
    assert "upload it there" in compiled.report.images[0]
    assert "data:image/gif;base64," in compiled.preview_html()  # previews before the upload
    assert not compiled.images[0].embedded


def test_view_in_browser_link_in_html_and_text_when_site_url_is_set(compiled011, tmp_path: Path) -> None:
    url = "https://gigo.dev/issues/011/"
    assert f'href="{url}"' in compiled011.html.source and "View in browser" in compiled011.html.source
    assert f"View in browser: {url}" in compiled011.preview_text()
    root = make_newsletter(tmp_path)
    config = root / "gigo-mail.toml"
    config.write_text(config.read_text().replace('site_url = "https://gigo.dev"\n', ""))
    without = compile_issue(load_config(root), find_issue(root, "11"))
    assert "View in browser" not in without.html.source and "View in browser" not in without.preview_text()


def test_public_values_use_defaults_or_a_neutral_word_never_a_subscriber(tmp_path: Path) -> None:
    root = make_newsletter(tmp_path)
    write_issue(root, "020.md", "subject: Hi {{ subscriber.name }}\npreheader: For {{ subscriber.city }}",
                PERSONAL)
    compiled = compile_issue(load_config(root), find_issue(root, "20"))
    values = escape_html(compiled.public_values())
    body = compiled.body_html.fill(values)
    assert "Hello reader, from somewhere." in body
    assert "READER" in body  # transforms still apply to the neutral word
    assert compiled.subject.fill(values) == "Hi reader"
    assert compiled.preheader.fill(values) == "For reader"
    assert "gigo:slot:" not in body and "ada@example.org" not in body
