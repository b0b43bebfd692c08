"""Pictures for a student's feedback page: their functions' outputs drawn beside the reference's.

``weights``: the small trained models the pictures use (stored in grader/public/pictures.npz);
``scenes``: what each picture asks of the student's code (run in the sandbox) and of the reference,
and how it is drawn; ``page``: the self-contained HTML page (Jinja2) with the grade and the pictures;
``train``: instructor side, retrains the stored weights (``python -m grader reference regenerate``).
"""
