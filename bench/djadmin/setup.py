"""Creates the admin benchmark's database from scratch: `python -m djadmin.setup USERNAME PASSWORD`.

Run from bench/ with BENCH_DJADMIN_DB naming the file. Applies every migration (`migrate`), then writes 100
books by 20 authors and one superuser, so every server reads the same rows.
"""
import datetime
import os
import sys


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: python -m djadmin.setup USERNAME PASSWORD")
    username, password = argv
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djadmin.settings")
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    path = settings.DATABASES["default"]["NAME"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for leftover in (path, path + "-journal", path + "-wal", path + "-shm"):
        if os.path.exists(leftover):
            os.unlink(leftover)  # a fresh database every run: no sessions or rows left by an earlier one
    call_command("migrate", verbosity=0, interactive=False)

    from django.contrib.auth.models import User

    from djadmin.models import Author, Book

    authors = Author.objects.bulk_create(Author(name="Author %02d" % i) for i in range(20))
    first = datetime.date(1990, 1, 1)
    Book.objects.bulk_create(
        Book(title="Book number %03d" % i, author=authors[i % len(authors)], isbn="978%010d" % i,
             pages=100 + 7 * i, published=first + datetime.timedelta(days=97 * i), in_print=i % 3 != 0)
        for i in range(100)
    )
    User.objects.create_superuser(username, "bench@example.invalid", password)
    print("djadmin: %s ready (%d books, superuser %s)" % (path, Book.objects.count(), username))


if __name__ == "__main__":
    main(sys.argv[1:])
