"""The work the views ask for; business rules live here and in ``ab/``, never in views."""
