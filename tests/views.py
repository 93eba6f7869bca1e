from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from tests.models import User
from tests.notifications import DurableMessage


@require_POST
def trigger_durable(request):
    """What a host project's view does: trigger notifications, in one transaction."""
    user = User.objects.get(pk=request.POST["user"])
    with transaction.atomic():
        pks = [DurableMessage.trigger(user).pk for _ in range(int(request.POST.get("count", 1)))]
    return JsonResponse({"pks": pks})
