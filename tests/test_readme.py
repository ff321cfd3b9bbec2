"""The README speaks to users: short, a picture of every page, each picture one the browser tests retake."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
TESTS = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))


def page_titles() -> list[str]:
    """The titles of app.py's st.Page entries, as the navigation shows them."""
    tree = ast.parse((ROOT / "app.py").read_text())
    return [kw.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "Page" for kw in node.keywords if kw.arg == "title"]


def readme_shots() -> dict[str, str]:
    """tests/test_browser.py's README_SHOTS (screenshot -> docs/ picture), read without importing Playwright."""
    tree = ast.parse((ROOT / "tests" / "test_browser.py").read_text())
    (value,) = [node.value for node in tree.body if isinstance(node, ast.Assign)
                and any(getattr(t, "id", None) == "README_SHOTS" for t in node.targets)]
    return ast.literal_eval(value)


def test_the_readme_is_short_and_has_the_two_set_up_commands():
    assert len(README.splitlines()) <= 150
    setup = README.split("## Set up and go")[1].split("\n## ")[0]
    assert re.findall(r"```bash\n(.+?)\n```", setup) == [
        "pip install -r requirements.txt && streamlit run app.py",
        "pip install -r requirements-dev.txt && python -m pytest"]


def test_every_page_has_its_picture_and_a_browser_test_retakes_it():
    found = re.findall(r"!\[([^\]]+)\]\(docs/([\w-]+)\.png\)", README)
    pictures = dict(found)
    assert len(pictures) == len(found), "two pictures with the same caption"
    titles = page_titles()
    assert len(titles) >= 9 and "Lessons" in titles
    assert set(titles) == set(pictures), "a page without a picture, or a picture of no page"
    for title, name in pictures.items():
        assert (ROOT / "docs" / f"{name}.png").is_file(), title
        keys = [key for key, picture in readme_shots().items() if picture == name]
        assert keys, f"docs/{name}.png is not one of test_browser.README_SHOTS"
        assert any(f'shot(page, "{key}")' in TESTS for key in keys), f"no browser test retakes docs/{name}.png"
