from django.db import models


class Book(models.Model):
    """What the change list shows: a few columns of different types, one of them a foreign key."""

    title = models.CharField(max_length=200)
    author = models.ForeignKey("Author", on_delete=models.CASCADE)
    isbn = models.CharField(max_length=13, unique=True)
    pages = models.PositiveIntegerField()
    published = models.DateField()
    in_print = models.BooleanField(default=True)

    def __str__(self):
        return self.title


class Author(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self):
        return self.name
