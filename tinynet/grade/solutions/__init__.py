"""Reference solutions of the assignments in tutorials/assignments/, graded by the tests.

For instructors and the test suite; students: write your own first.
"""
