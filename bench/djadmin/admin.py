from django.contrib import admin

from djadmin.models import Author, Book


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):
    # All 100 rows on one page, with the author joined in the same query, a filter and a search box: the
    # change list as a real site configures it.
    list_display = ("title", "author", "isbn", "pages", "published", "in_print")
    list_select_related = ("author",)
    list_filter = ("in_print",)
    search_fields = ("title", "isbn")
    ordering = ("id",)
    list_per_page = 100


admin.site.register(Author)
