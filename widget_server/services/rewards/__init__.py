"""Things worth money: coupon pools and their single-use codes (``coupons``), the wheel's spin,
decided on the server for a wheel it offered (``spin``), and the shop's orders (``orders``).

May import: platform, funnel, visitors, campaigns, promotion.
"""
