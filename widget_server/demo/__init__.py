"""The demo store: a few storefront pages with the snippet, for trying Funnelcake out."""

from flask import Blueprint, abort, redirect, render_template, url_for

from .store import DEMO_SITE_KEY

bp = Blueprint("demo", __name__, template_folder="../templates")

PRODUCTS = [
    {"slug": "mug", "name": "Funnel cake mug", "price": 14.0},
    {"slug": "apron", "name": "Baker's apron", "price": 29.0},
    {"slug": "sugar", "name": "Powdered sugar shaker", "price": 9.5},
]
PAGES = {"home", "product", "cart", "checkout", "thanks"}


@bp.get("/")
def index():
    """Send visitors of the bare host to the demo store."""
    return redirect(url_for("demo.page", page="home"))


@bp.get("/demo/", defaults={"page": "home"})
@bp.get("/demo/<page>")
def page(page):
    """Render one page of the demo store with the snippet on it."""
    if page not in PAGES:
        abort(404)
    return render_template("demo/store.html", page=page, products=PRODUCTS, site_key=DEMO_SITE_KEY)
