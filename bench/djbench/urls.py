from django.urls import path

from djbench import views

urlpatterns = [path("", views.page)]
