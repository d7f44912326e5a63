"""Things worth money: coupon pools and their single-use codes (``coupons``), the wheel's spin,
decided on the server for a wheel it offered (``spin``), and the shop's orders (``orders``).

May import: every other area (a spin first applies the visitor's pending events).
"""
