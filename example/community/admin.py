from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from community.models import Comment, Post, User

admin.site.register(User, UserAdmin)


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ("title", "author", "published", "likes", "created")
    raw_id_fields = ("author",)


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ("post", "author", "created")
    raw_id_fields = ("post", "author")
