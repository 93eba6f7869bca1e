from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import get_object_or_404, render

from community.models import Post


def home(request):
    posts = Post.objects.filter(published=True).select_related("author")[:20]
    return render(request, "community/home.html", {"posts": posts})


@login_required
def post_detail(request, pk):
    visible = Q(published=True) | Q(author=request.user)
    post = get_object_or_404(Post.objects.filter(visible).select_related("author"), pk=pk)
    # What this user was told about this post, straight from request.user.notifications.
    about_it = request.user.notifications.sent().filter(object_id=str(post.pk), content_type__model="post")
    comments = post.comments.select_related("author")[:50]
    return render(
        request,
        "community/post_detail.html",
        {"post": post, "comments": comments, "notifications_about_it": about_it.count()},
    )
